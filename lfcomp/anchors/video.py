"""Video-codec anchors: a light field coded as one pseudo-video sequence (PVS) with PyAV.

The U×V views are ordered as frames (``lfcomp.anchors.pvs``), converted to full-range BT.601
Y'CbCr in numpy (``lfcomp.anchors.colour``) and coded with a constant QP and a single intra
frame for the whole sequence (keyint = U·V, no scene-cut detection), tuned for PSNR:

* ``hevc``: x265 (``libx265``), Main 4:4:4 or Main profile; x265 parameters
  ``qp=QP:keyint=N:min-keyint=N:scenecut=0:info=0:log-level=error`` and ``tune=psnr``.
  ``info=0`` keeps x265 from writing its version/options SEI (about 2 KB) into the stream.
* ``h264``: x264 (``libx264``), High 4:4:4 Predictive or High profile, ``qp=QP``, ``tune=psnr``,
  ``keyint=N:min-keyint=N:scenecut=0``. x264 has no switch for its version/options SEI (about
  0.7 KB), so that one NAL unit is removed from the stream, as ``info=0`` does for x265; the
  decoder does not use it.
* ``av1``: SVT-AV1 (``libsvtav1``), 4:2:0 only (the Main profile SVT-AV1 implements), ``qp=QP``
  (1–63, a different scale from HEVC/H.264 QPs), ``tune=1`` (PSNR), intra period ≥ U·V, no
  scene-change detection. The stream is the raw low-overhead OBU sequence (``.obu``), decoded
  with dav1d.

The bitstream is the encoder's raw output (Annex-B for HEVC and H.264), with no container, so
bits = 8 × the file size. The decoder gets only that file plus the conventions every PVS anchor
shares (grid, view size, chroma format, scan order). ``anchor`` writes ``bitstream.<ext>``,
``decoded.zarr`` and ``metrics.json``; the metrics have the same keys and definitions as
``lfcomp evaluate`` writes for the neural codec, plus the coding parameters and timings.
Timings are wall-clock seconds: ``encode_seconds`` includes the RGB→Y'CbCr conversion, and
``decode_seconds`` the Y'CbCr→RGB conversion.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from lfcomp.anchors.colour import CHROMAS, planes_to_rgb, rgb_to_planes
from lfcomp.anchors.pvs import ANCHOR_SCANS, CENTRE, coded_order, views_from_frames
from lfcomp.artifacts import atomic_output
from lfcomp.errors import LfcompError
from lfcomp.evaluation.floors import floor_fields
from lfcomp.evaluation.metrics import bits_per_pixel, distortion_metrics
from lfcomp.io.lightfield import LightField, read_lightfield, write_lightfield


@dataclass(frozen=True)
class VideoCodec:
    """A video codec as PyAV offers it."""

    name: str
    encoder: str  # PyAV/FFmpeg encoder name
    decoder: str  # PyAV/FFmpeg decoder name
    suffix: str  # bitstream file suffix
    chromas: tuple[str, ...]
    qp_range: tuple[int, int]
    default_preset: str


CODECS: dict[str, VideoCodec] = {
    "hevc": VideoCodec("hevc", "libx265", "hevc", ".hevc", ("444", "420"), (0, 51), "medium"),
    "h264": VideoCodec("h264", "libx264", "h264", ".h264", ("444", "420"), (0, 51), "medium"),
    "av1": VideoCodec("av1", "libsvtav1", "libdav1d", ".obu", ("420",), (1, 63), "8"),
}
PIX_FMTS = {"444": "yuv444p", "420": "yuv420p"}
METRICS_NAME, DECODED_NAME = "metrics.json", "decoded.zarr"


def anchor_label(codec: str, chroma: str, scan: str = "serpentine") -> str:
    """The anchor's name in tables and directories: ``hevc444``, ``hevc420``, ``h264444``, ``av1420``;
    ``centre_hevc444`` for the centre view alone, copied to every view (a floor, not a BD reference)."""
    return f"{CENTRE}_{codec}{chroma}" if scan == CENTRE else f"{codec}{chroma}"


def bitstream_name(codec: str) -> str:
    """``bitstream.hevc``, ``bitstream.h264`` or ``bitstream.obu``."""
    return "bitstream" + _codec(codec).suffix


def _codec(codec: str) -> VideoCodec:
    if codec not in CODECS:
        raise LfcompError("--codec", f"unknown codec {codec!r} (choose from {', '.join(CODECS)})")
    return CODECS[codec]


def check_parameters(codec: str, chroma: str, qp: int, scan: str) -> VideoCodec:
    """Validate an anchor's parameters (before any work), returning the codec."""
    spec = _codec(codec)
    if chroma not in CHROMAS:
        raise LfcompError("--chroma", f"unknown chroma format {chroma!r} (choose from {', '.join(CHROMAS)})")
    if chroma not in spec.chromas:
        raise LfcompError("--chroma", f"{spec.encoder} codes only {'/'.join(spec.chromas)} here, not {chroma}")
    low, high = spec.qp_range
    if not isinstance(qp, (int, np.integer)) or not low <= qp <= high:
        raise LfcompError("--qp", f"{codec} QP must be an integer in {low}..{high}, got {qp!r}")
    if scan not in ANCHOR_SCANS:
        raise LfcompError("--scan", f"unknown scan order {scan!r} (choose from {', '.join(ANCHOR_SCANS)})")
    return spec


def _coded_size(height: int, width: int, chroma: str) -> tuple[int, int]:
    """Frame size handed to the encoder: 4:2:0 needs even sizes (odd ones are edge-padded)."""
    return (height + height % 2, width + width % 2) if chroma == "420" else (height, width)


def _encoder_options(spec: VideoCodec, qp: int, frames: int, preset: str) -> dict[str, str]:
    if spec.name == "hevc":
        return {"preset": preset, "tune": "psnr",
                "x265-params": f"qp={qp}:keyint={frames}:min-keyint={frames}:scenecut=0:info=0:log-level=error"}
    if spec.name == "h264":
        return {"preset": preset, "tune": "psnr", "qp": str(qp),
                "x264-params": f"keyint={frames}:min-keyint={frames}:scenecut=0"}
    return {"preset": preset, "qp": str(qp), "svtav1-params": "tune=1:scd=0"}


_START_CODE = re.compile(b"\x00\x00\x01")


def drop_x264_info(data: bytes) -> bytes:
    """Remove x264's version/options SEI NAL unit(s) from an H.264 Annex-B stream."""
    starts = [m.start() for m in _START_CODE.finditer(data)]
    starts = [s - 1 if s > 0 and data[s - 1] == 0 else s for s in starts]  # 4-byte start codes
    if not starts:
        return data
    units = [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
    kept = [unit for unit in units
            if not ((unit[unit.index(b"\x00\x01") + 2] & 0x1F) == 6 and b"x264 - core" in unit)]
    return data[:starts[0]] + b"".join(kept)


def _write_plane(plane: Any, values: np.ndarray) -> None:
    buffer = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    buffer[:, :plane.width] = values


def _read_plane(plane: Any) -> np.ndarray:
    buffer = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    return buffer[:, :plane.width].copy()


def _av():
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its configuration to stderr otherwise
    try:
        import av
    except ImportError as exc:
        raise LfcompError("av", "PyAV is not installed (pip install av)") from exc
    return av


def encode_views(views: np.ndarray, codec: str = "hevc", chroma: str = "444", qp: int = 32,
                 scan: str = "serpentine", preset: str | None = None) -> tuple[bytes, float]:
    """Code a light field (U, V, H, W, 3) uint8 as one PVS; returns (bitstream, encode seconds)."""
    spec = check_parameters(codec, chroma, qp, scan)
    if views.dtype != np.uint8 or views.ndim != 5 or views.shape[-1] != 3:
        raise LfcompError("views", f"must be uint8 (U, V, H, W, 3), got {views.dtype} {views.shape}")
    av = _av()
    U, V, H, W, _ = views.shape
    order = coded_order(U, V, scan)
    N = len(order)
    CH, CW = _coded_size(H, W, chroma)
    preset = str(preset if preset is not None else spec.default_preset)
    pix_fmt = PIX_FMTS[chroma]
    start = time.perf_counter()
    try:
        context = av.CodecContext.create(spec.encoder, "w")
    except (av.error.FFmpegError, ValueError) as exc:  # UnknownCodecError is a ValueError
        raise LfcompError(spec.encoder, f"this PyAV build has no {spec.encoder} encoder ({exc})") from exc
    context.width, context.height, context.pix_fmt = CW, CH, pix_fmt
    context.time_base, context.framerate = Fraction(1, 25), Fraction(25)
    context.bit_rate = 0  # constant QP: no rate control
    context.gop_size = N + 1  # one intra frame for the whole sequence (SVT-AV1: intra period = gop_size − 1)
    context.options = _encoder_options(spec, qp, N, preset)
    out = bytearray()
    try:
        context.open()
        for index, (u, v) in enumerate(order):
            image = views[u, v]
            if (CH, CW) != (H, W):
                image = np.pad(image, ((0, CH - H), (0, CW - W), (0, 0)), mode="edge")
            frame = av.VideoFrame(CW, CH, pix_fmt)
            for plane, values in zip(frame.planes, rgb_to_planes(image, chroma)):
                _write_plane(plane, values)
            frame.pts = index
            for packet in context.encode(frame):
                out += bytes(packet)
        for packet in context.encode(None):
            out += bytes(packet)
    except av.error.FFmpegError as exc:
        raise LfcompError(spec.encoder, f"encoding failed ({' '.join(str(exc).split())})") from exc
    data = drop_x264_info(bytes(out)) if codec == "h264" else bytes(out)
    if not data:
        raise LfcompError(spec.encoder, "the encoder produced no data")
    return data, time.perf_counter() - start


def decode_views(data: bytes, codec: str, grid: tuple[int, int], size: tuple[int, int], chroma: str = "444",
                 scan: str = "serpentine", where: str | Path = "bitstream") -> tuple[np.ndarray, float]:
    """Decode a PVS bitstream back to views (U, V, H, W, 3) uint8; returns (views, decode seconds)."""
    spec = _codec(codec)
    av = _av()
    U, V = grid
    H, W = size
    CH, CW = _coded_size(H, W, chroma)
    start = time.perf_counter()
    frames = []
    try:
        context = av.CodecContext.create(spec.decoder, "r")
        packets = context.parse(data) + context.parse(None)
        for packet in packets + [None]:
            for frame in context.decode(packet):
                if frame.width != CW or frame.height != CH or frame.format.name != PIX_FMTS[chroma]:
                    raise LfcompError(where, f"decoded frame {len(frames)} is {frame.width}×{frame.height} "
                                             f"{frame.format.name}, expected {CW}×{CH} {PIX_FMTS[chroma]}")
                y, cb, cr = (_read_plane(p) for p in frame.planes[:3])
                frames.append(planes_to_rgb(y, cb, cr, chroma)[:H, :W])
    except av.error.FFmpegError as exc:
        raise LfcompError(where, f"{spec.decoder} cannot decode it ({' '.join(str(exc).split())})") from exc
    expected = len(coded_order(U, V, scan))
    if len(frames) != expected:
        raise LfcompError(where, f"decoded {len(frames)} frames, expected {expected} for {U}×{V} views ({scan})")
    views = views_from_frames(np.stack(frames), U, V, scan)
    return views, time.perf_counter() - start


@dataclass
class CodedLightField:
    """One rate point of a video anchor: the bitstream and what the decoder makes of it."""

    bitstream: bytes
    decoded: np.ndarray  # (U, V, H, W, 3) uint8
    encode_seconds: float
    decode_seconds: float


def code_lightfield(views: np.ndarray, codec: str = "hevc", chroma: str = "444", qp: int = 32,
                    scan: str = "serpentine", preset: str | None = None) -> CodedLightField:
    """Encode and decode a light field through a video codec (no files)."""
    data, encode_seconds = encode_views(views, codec, chroma, qp, scan, preset)
    decoded, decode_seconds = decode_views(data, codec, views.shape[:2], views.shape[2:4], chroma, scan)
    return CodedLightField(data, decoded, encode_seconds, decode_seconds)


def anchor(reference: str | Path, outdir: str | Path, codec: str = "hevc", chroma: str = "444", qp: int = 32,
           scan: str = "serpentine", preset: str | None = None, scene: str | None = None) -> dict[str, Any]:
    """Code the light field zarr ``reference`` with a video anchor; write into ``outdir``:
    ``bitstream.<ext>``, ``decoded.zarr`` and, last, ``metrics.json`` (returned as a dict).

    Each file is written atomically, and metrics.json only after the other two exist, so its
    presence means the rate point is complete.
    """
    spec = check_parameters(codec, chroma, qp, scan)
    preset = str(preset if preset is not None else spec.default_preset)
    ref = read_lightfield(reference)
    out = Path(outdir)
    bitstream_path, decoded_path = out / bitstream_name(codec), out / DECODED_NAME
    data, encode_seconds = encode_views(ref.views, codec, chroma, qp, scan, preset)
    with atomic_output(bitstream_path) as tmp:
        tmp.write_bytes(data)
    # Decode what was written, so that the metrics describe the file on disk.
    decoded, decode_seconds = decode_views(bitstream_path.read_bytes(), codec, ref.grid, ref.size, chroma, scan,
                                           where=bitstream_path)
    label = anchor_label(codec, chroma, scan)
    attrs = {**ref.attrs,
             "anchor": {"label": label, "codec": codec, "encoder": spec.encoder, "chroma": chroma, "qp": int(qp),
                        "scan": scan, "preset": preset, "bitstream": bitstream_path.name}}
    write_lightfield(LightField(decoded, attrs), decoded_path)
    num_bytes = bitstream_path.stat().st_size
    metrics: dict[str, Any] = {
        "reference": str(reference), "decoded": str(decoded_path),
        **distortion_metrics(ref.views, decoded),
        "bitstream": str(bitstream_path), "bytes": num_bytes, "bits": 8 * num_bytes,
        "bpp": bits_per_pixel(num_bytes, ref.grid, ref.size),
        "anchor": label, "codec": codec, "encoder": spec.encoder, "chroma": chroma, "qp": int(qp), "scan": scan,
        "preset": preset, "encode_seconds": round(encode_seconds, 4), "decode_seconds": round(decode_seconds, 4),
    }
    metrics.update(floor_fields(ref.attrs, ref.views, metrics["psnr_rgb"]))
    if scene is not None:
        metrics["scene"] = scene
    with atomic_output(out / METRICS_NAME) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics
