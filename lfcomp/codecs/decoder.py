"""The decoder: any codec's bitstream → every grid view and any fractional viewpoint, from the file alone.

The container's header names the codec (``codec``; streams without it, container version 1, are
QDLR's); the codec's ``decoder`` module states what decoding the payload will cost
(``decode_cost``: it validates the whole header against the codec's documented limits first) and
turns the payload into a ``DecodedModel`` that renders viewpoints (``decoded_model``). A bitstream
is untrusted input: its cost is checked against ``DecodeLimits`` before the model is built and
again, with the number of views, before anything is rendered. This module writes what it renders:
a zarr of views, or a free-viewpoint clip.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from lfcomp import __version__
from lfcomp.artifacts import atomic_output
from lfcomp.bitstream.container import CodecPayload, read_bitstream
from lfcomp.codecs.limits import DEFAULT_LIMITS, GIB, DecodeLimits
from lfcomp.codecs.registry import CODECS
from lfcomp.errors import LfcompError

log = logging.getLogger("lfcomp")

__all__ = ["DEFAULT_LIMITS", "DecodeCost", "DecodeLimits", "DecodedModel", "check_budget", "decode_to_zarr",
           "open_bitstream", "render_clip", "viewpoint_circle"]

DEFAULT_CODEC = "qdlr"  # container version 1 streams carry no codec name
PARSE_BYTES_PER_BYTE = 100  # peak memory of parsing per stream byte (Huffman decoding: ~80 B per payload byte)
@dataclass(frozen=True)
class DecodeCost:
    """A decode's cost as the codec's decoder states it from the validated header, before building."""

    model_bytes: int  # memory the rebuilt model (and its decoding) holds
    bytes_per_ray: int  # rendering working memory per ray in flight
    macs_per_ray: int  # network multiply-accumulates per rendered ray (pixel)
    whole_views: bool = False  # the renderer takes a whole view at once instead of chunks of rays


@dataclass(frozen=True)
class DecodedModel:
    """What a codec's decoder rebuilds from a bitstream: the view grid it was coded for, its
    architecture (recorded with the decoded views), its cost and a renderer of (u, v) grid positions."""

    grid: tuple[int, int]
    size: tuple[int, int]  # H, W of a view
    spec: dict[str, Any]
    render: Callable[[list[tuple[float, float]], int, bool], np.ndarray]  # (positions, chunk_rays, progress) → uint8
    cost: DecodeCost


def _amount(num_bytes: float) -> str:
    return f"{num_bytes / GIB:.2f} GiB" if num_bytes >= GIB / 10 else f"{num_bytes / 2**20:.1f} MiB"


def codec_of(payload: CodecPayload, source: str) -> str:
    """The registered codec that wrote ``payload``."""
    name = payload.header.get("codec", DEFAULT_CODEC)
    if not isinstance(name, str) or name not in CODECS:
        raise LfcompError(source, f"bitstream of an unknown codec {str(name)[:40]!r}")
    return name


def open_bitstream(bitstream: str | Path, device: torch.device | None = None,
                   limits: DecodeLimits = DEFAULT_LIMITS) -> tuple[DecodedModel, int]:
    """Parse a bitstream, validate its whole header, check the model fits ``limits`` and rebuild it;
    returns the model and the stream's size in bytes."""
    path = Path(bitstream)
    size = path.stat().st_size if path.is_file() else 0
    if size > limits.max_file_bytes or PARSE_BYTES_PER_BYTE * size > limits.max_memory:
        raise LfcompError(path, f"{size} bytes, larger than any bitstream this decoder reads with these limits "
                                f"({min(limits.max_file_bytes, limits.max_memory // PARSE_BYTES_PER_BYTE)} bytes)")
    payload = read_bitstream(path)
    decoder = importlib.import_module(CODECS[codec_of(payload, str(path))].decoder)
    cost = decoder.decode_cost(payload, str(path))
    if cost.model_bytes > limits.max_memory:
        raise LfcompError(path, f"the decoded model would need {_amount(cost.model_bytes)} of memory, over the "
                                f"limit of {_amount(limits.max_memory)} (--max-memory)")
    return decoder.decoded_model(payload, str(path), device or torch.device("cpu")), path.stat().st_size


def check_budget(model: DecodedModel, views: int, chunk_rays: int, source: str,
                 limits: DecodeLimits = DEFAULT_LIMITS) -> str:
    """Refuse, before rendering anything, a decode of ``views`` views that would exceed ``limits``
    (a crafted header can claim any grid, view size and architecture); returns the stated cost."""
    height, width = int(model.size[0]), int(model.size[1])
    pixels = views * height * width
    cost = model.cost
    in_flight = height * width if cost.whole_views else min(chunk_rays, height * width)
    memory = cost.model_bytes + in_flight * cost.bytes_per_ray + 3 * pixels + 32 * height * width
    macs = pixels * cost.macs_per_ray
    stated = (f"{views} views of {height}×{width} = {pixels} pixels, {_amount(memory)} of memory, "
              f"{macs / 1e12:.3g} TMAC")
    if pixels > limits.max_pixels:
        raise LfcompError(source, f"decoding would render {stated}: over the limit of {limits.max_pixels} pixels")
    if memory > limits.max_memory:
        raise LfcompError(source, f"decoding would need {stated}: over the limit of "
                                  f"{_amount(limits.max_memory)} (--max-memory)")
    if macs > limits.max_macs:
        raise LfcompError(source, f"decoding would need {stated}: over the limit of "
                                  f"{limits.max_macs / 1e12:.3g} TMAC (--max-tmac)")
    return stated


def decode_to_zarr(bitstream: str | Path, out: str | Path, grid_views: bool = True,
                   free_positions: list[tuple[float, float]] | None = None, device: torch.device | None = None,
                   chunk_rays: int = 4096, limits: DecodeLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Render the grid (and any fractional (u, v) positions) from the bitstream alone into a zarr."""
    path = Path(bitstream)
    model, num_bytes = open_bitstream(path, device, limits)
    U, V = model.grid
    stated = check_budget(model, (U * V if grid_views else 0) + len(free_positions or []), chunk_rays, str(path),
                          limits)
    log.info("decoding %s: %s", path, stated)
    attrs = {"source": str(path.resolve()), "format": "lfcomp-decoded", "bitstream_bytes": num_bytes,
             "spec": model.spec, "lfcomp_version": __version__}
    with atomic_output(out) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        if grid_views:
            positions = [(float(u), float(v)) for u in range(U) for v in range(V)]
            views = model.render(positions, chunk_rays, True)
            H, W = views.shape[1:3]
            array = group.create_array("views", shape=(U, V, H, W, 3), chunks=(1, 1, H, W, 3), dtype="uint8")
            array[...] = views.reshape(U, V, H, W, 3)
        if free_positions:
            free = model.render(free_positions, chunk_rays, True)
            group.create_array("free_views", data=free, chunks=(1, *free.shape[1:]))
            attrs["free_positions"] = [list(p) for p in free_positions]
        group.attrs.update(attrs)
    return {"bytes": num_bytes, "grid": [U, V], "free_views": len(free_positions or [])}


def viewpoint_circle(grid: tuple[int, int] | list[int], frames: int, radius: float = 0.75) -> list[tuple[float, float]]:
    """A closed path of fractional (u, v) viewpoints: a circle around the centre view spanning
    ``radius`` × the grid's half-extent, so most positions lie between grid views."""
    U, V = grid
    cu, cv = (U - 1) / 2.0, (V - 1) / 2.0
    angles = np.linspace(0.0, 2.0 * np.pi, frames, endpoint=False)
    return [(float(cu + radius * cu * np.sin(a)), float(cv + radius * cv * np.cos(a))) for a in angles]


def render_clip(bitstream: str | Path, out: str | Path, frames: int = 36, fps: float = 12.0,
                device: torch.device | None = None, chunk_rays: int = 4096,
                limits: DecodeLimits = DEFAULT_LIMITS) -> list[tuple[float, float]]:
    """Free-viewpoint clip from the bitstream alone: views along ``viewpoint_circle``, as GIF/MP4."""
    from lfcomp.evaluation.plots import write_clip

    model, _ = open_bitstream(bitstream, device, limits)
    log.info("clip of %s: %s", bitstream, check_budget(model, frames, chunk_rays, str(bitstream), limits))
    positions = viewpoint_circle(model.grid, frames)
    write_clip(model.render(positions, chunk_rays, True), out, fps=fps)
    return positions
