"""Stages 7-8: the QDLR-NeRF bitstream (encode) and rendering any view from it alone (decode).

The bitstream carries (paper §2.5): the architecture (the scene spec, as deflated JSON), the
camera parameters as float32 (log f, Δ and the focus-plane term κ), the shared codebook (float32),
each weight tensor's outlier range (float32 pairs), the biases as 16-bit codes with their ranges,
and the Huffman-coded union of codebook labels and 16-bit outlier codes of every weight. Tensor
names and shapes are not sent: the decoder derives them from the architecture.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from lfcomp import __version__
from lfcomp.artifacts import atomic_output
from lfcomp.bitstream.container import CodecPayload, bitstream_breakdown, decode_payload, encode_payload
from lfcomp.errors import LfcompError
from lfcomp.codecs.qdlr.quantize import QuantizedModel, bias_params, dequantize_model, weight_params
from lfcomp.models.scene import SceneModel, render_views

log = logging.getLogger("lfcomp")
CAMERA_KEYS = ("log_focal", "baseline", "kappa")


def build_model(spec: dict[str, Any], camera_state: dict[str, float], quantized: QuantizedModel) -> SceneModel:
    """The QDLR network exactly as the decoder sees it: architecture + camera + dequantized tensors."""
    model = SceneModel(spec, {"focal": 1.0, "baseline": 0.0, "kappa": 0.0}, camera_trainable=False)
    model.camera.load_state_dict({k: torch.tensor(camera_state[k], dtype=torch.float32) for k in CAMERA_KEYS})
    return dequantize_model(model, quantized)


def to_payload(spec: dict[str, Any], camera_state: dict[str, float], quantized: QuantizedModel) -> CodecPayload:
    header = {"spec": spec, "centroids": quantized.centroids}
    float32 = {
        "camera": np.array([camera_state[k] for k in CAMERA_KEYS], dtype=np.float32),
        "codebook": quantized.codebook.numpy().astype(np.float32),
        "weight_ranges": quantized.weight_ranges.numpy().astype(np.float32),
        "bias_ranges": quantized.bias_ranges.numpy().astype(np.float32),
    }
    bias_codes = torch.cat(quantized.bias_codes).numpy() if quantized.bias_codes else np.zeros(0)
    return CodecPayload(header=header, float32=float32, uint16={"biases": bias_codes.astype(np.uint16)},
                        symbols=quantized.all_symbols())


def from_payload(payload: CodecPayload, source: str) -> tuple[dict[str, Any], dict[str, float], QuantizedModel]:
    """Rebuild (spec, camera state, quantized model); inconsistent contents are clean errors."""
    try:
        spec = copy.deepcopy(payload.header["spec"])
        centroids = int(payload.header["centroids"])
        skeleton = SceneModel(spec, {"focal": 1.0, "baseline": 0.0, "kappa": 0.0}, camera_trainable=False)
        weights, biases = weight_params(skeleton), bias_params(skeleton)
        camera = payload.float32["camera"]
        codebook = torch.from_numpy(payload.float32["codebook"].copy())
        weight_ranges = torch.from_numpy(payload.float32["weight_ranges"].copy()).reshape(-1, 2)
        bias_ranges = torch.from_numpy(payload.float32["bias_ranges"].copy()).reshape(-1, 2)
        bias_codes = torch.from_numpy(payload.uint16["biases"].astype(np.int64))
        symbols = torch.from_numpy(np.asarray(payload.symbols, dtype=np.int64))
    except Exception as exc:
        raise LfcompError(source, f"bitstream does not describe an lfcomp model ({type(exc).__name__}: {exc})") from None
    sizes = [p.numel() for _, p in weights]
    bias_sizes = [p.numel() for _, p in biases]
    problems = []
    if camera.shape != (3,):
        problems.append("camera block must hold 3 values")
    if codebook.numel() != centroids or not 2 <= centroids <= 65536:
        problems.append(f"codebook has {codebook.numel()} values for N={centroids}")
    if weight_ranges.shape[0] != len(sizes) or bias_ranges.shape[0] != len(bias_sizes):
        problems.append("quantizer ranges do not match the architecture")
    if symbols.numel() != sum(sizes):
        problems.append(f"{symbols.numel()} weight symbols for {sum(sizes)} weights")
    if bias_codes.numel() != sum(bias_sizes):
        problems.append(f"{bias_codes.numel()} bias codes for {sum(bias_sizes)} biases")
    if symbols.numel() and int(symbols.max()) > centroids + 65535:
        problems.append("weight symbol outside the alphabet")
    if problems:
        raise LfcompError(source, "inconsistent bitstream: " + "; ".join(problems))
    quantized = QuantizedModel(
        centroids=centroids, codebook=codebook, weight_names=[n for n, _ in weights],
        weight_shapes=[list(p.shape) for _, p in weights], weight_symbols=list(torch.split(symbols, sizes)),
        weight_ranges=weight_ranges, bias_names=[n for n, _ in biases],
        bias_codes=list(torch.split(bias_codes, bias_sizes)), bias_ranges=bias_ranges)
    return spec, dict(zip(CAMERA_KEYS, map(float, camera))), quantized


def encode(spec: dict[str, Any], camera_state: dict[str, float], quantized: QuantizedModel,
           path: str | Path) -> dict[str, Any]:
    """Write the bitstream and check that it decodes to exactly the same tensors."""
    data = encode_payload(to_payload(spec, camera_state, quantized))
    _, camera_back, back = from_payload(decode_payload(data, str(path)), str(path))
    same = (camera_back == camera_state and torch.equal(back.codebook, quantized.codebook)
            and all(torch.equal(a, b) for a, b in zip(back.weight_symbols, quantized.weight_symbols))
            and all(torch.equal(a, b) for a, b in zip(back.bias_codes, quantized.bias_codes))
            and torch.equal(back.weight_ranges, quantized.weight_ranges)
            and torch.equal(back.bias_ranges, quantized.bias_ranges))
    if not same:
        raise RuntimeError("internal error: the bitstream does not round-trip the quantized model")
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return {"bytes": len(data), "sections": bitstream_breakdown(data), "symbols": int(quantized.all_symbols().size)}


def decode_to_zarr(bitstream: str | Path, out: str | Path, grid_views: bool = True,
                   free_positions: list[tuple[float, float]] | None = None, device: torch.device | None = None,
                   chunk_rays: int = 4096) -> dict[str, Any]:
    """Render the grid (and any fractional (u, v) positions) from the bitstream alone into a zarr."""
    path = Path(bitstream)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LfcompError(path, "no such file") from None
    except IsADirectoryError:
        raise LfcompError(path, "is a directory, not a bitstream") from None
    spec, camera_state, quantized = from_payload(decode_payload(data, str(path)), str(path))
    model = build_model(spec, camera_state, quantized).to(device or torch.device("cpu"))
    U, V = spec["grid"]
    attrs = {"source": str(path.resolve()), "format": "lfcomp-decoded", "bitstream_bytes": len(data),
             "spec": spec, "lfcomp_version": __version__}
    with atomic_output(out) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        if grid_views:
            positions = [(float(u), float(v)) for u in range(U) for v in range(V)]
            views = render_views(model, positions, chunk_rays, progress=True)
            H, W = views.shape[1:3]
            array = group.create_array("views", shape=(U, V, H, W, 3), chunks=(1, 1, H, W, 3), dtype="uint8")
            array[...] = views.reshape(U, V, H, W, 3)
        if free_positions:
            free = render_views(model, free_positions, chunk_rays, progress=True)
            group.create_array("free_views", data=free, chunks=(1, *free.shape[1:]))
            attrs["free_positions"] = [list(p) for p in free_positions]
        group.attrs.update(attrs)
    return {"bytes": len(data), "grid": [U, V], "free_views": len(free_positions or [])}


def viewpoint_circle(grid: tuple[int, int] | list[int], frames: int, radius: float = 0.75) -> list[tuple[float, float]]:
    """A closed path of fractional (u, v) viewpoints: a circle around the centre view spanning
    ``radius`` × the grid's half-extent, so most positions lie between grid views."""
    U, V = grid
    cu, cv = (U - 1) / 2.0, (V - 1) / 2.0
    angles = np.linspace(0.0, 2.0 * np.pi, frames, endpoint=False)
    return [(float(cu + radius * cu * np.sin(a)), float(cv + radius * cv * np.cos(a))) for a in angles]


def render_clip(bitstream: str | Path, out: str | Path, frames: int = 36, fps: float = 12.0,
                device: torch.device | None = None, chunk_rays: int = 4096) -> list[tuple[float, float]]:
    """Free-viewpoint clip from the bitstream alone: views along ``viewpoint_circle``, as GIF/MP4."""
    from lfcomp.evaluation.plots import write_clip

    path = Path(bitstream)
    if not path.is_file():
        raise LfcompError(path, "no such bitstream file")
    spec, camera_state, quantized = from_payload(decode_payload(path.read_bytes(), str(path)), str(path))
    model = build_model(spec, camera_state, quantized).to(device or torch.device("cpu"))
    positions = viewpoint_circle(spec["grid"], frames)
    write_clip(render_views(model, positions, chunk_rays, progress=True), out, fps=fps)
    return positions
