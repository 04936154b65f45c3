"""The decoder: any codec's bitstream → every grid view and any fractional viewpoint, from the file alone.

The container's header names the codec (``codec``; streams without it, container version 1, are
QDLR's); the codec's ``decoder`` module turns the payload into a ``DecodedModel`` that renders
viewpoints. This module writes what it renders: a zarr of views, or a free-viewpoint clip.
"""

from __future__ import annotations

import importlib
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
from lfcomp.codecs.registry import CODECS
from lfcomp.errors import LfcompError

__all__ = ["MAX_DECODED_PIXELS", "DecodedModel", "check_output_size", "decode_to_zarr", "open_bitstream", "render_clip", "viewpoint_circle"]

DEFAULT_CODEC = "qdlr"  # container version 1 streams carry no codec name
MAX_DECODED_PIXELS = 1 << 28  # views × pixels one decode may render: 0.75 GiB of 8-bit RGB


@dataclass(frozen=True)
class DecodedModel:
    """What a codec's decoder rebuilds from a bitstream: the view grid it was coded for, its
    architecture (recorded with the decoded views) and a renderer of (u, v) grid positions."""

    grid: tuple[int, int]
    size: tuple[int, int]  # H, W of a view
    spec: dict[str, Any]
    render: Callable[[list[tuple[float, float]], int, bool], np.ndarray]  # (positions, chunk_rays, progress) → uint8


def codec_of(payload: CodecPayload, source: str) -> str:
    """The registered codec that wrote ``payload``."""
    name = payload.header.get("codec", DEFAULT_CODEC)
    if name not in CODECS:
        raise LfcompError(source, f"bitstream of an unknown codec {name!r}")
    return name


def open_bitstream(bitstream: str | Path, device: torch.device | None = None) -> tuple[DecodedModel, int]:
    """Parse a bitstream and rebuild its model; returns it and the stream's size in bytes."""
    path = Path(bitstream)
    payload = read_bitstream(path)
    decoder = importlib.import_module(CODECS[codec_of(payload, str(path))].decoder)
    return decoder.decoded_model(payload, str(path), device or torch.device("cpu")), path.stat().st_size


def check_output_size(model: DecodedModel, views: int, source: str) -> None:
    """Refuse, before rendering anything, a decode whose views would not fit the limit (a crafted
    header can claim any grid and view size)."""
    try:
        pixels = views * int(model.size[0]) * int(model.size[1])
    except (TypeError, ValueError, IndexError):
        raise LfcompError(source, f"bitstream states no usable view size ({model.size!r})") from None
    if not 0 < pixels <= MAX_DECODED_PIXELS:
        raise LfcompError(source, f"decoding would render {views} views of {model.size[0]}×{model.size[1]} = "
                                  f"{pixels} pixels ({3 * pixels / 2**30:.1f} GiB), over the decoder's limit of "
                                  f"{MAX_DECODED_PIXELS} pixels")


def decode_to_zarr(bitstream: str | Path, out: str | Path, grid_views: bool = True,
                   free_positions: list[tuple[float, float]] | None = None, device: torch.device | None = None,
                   chunk_rays: int = 4096) -> dict[str, Any]:
    """Render the grid (and any fractional (u, v) positions) from the bitstream alone into a zarr."""
    path = Path(bitstream)
    model, num_bytes = open_bitstream(path, device)
    U, V = model.grid
    check_output_size(model, (U * V if grid_views else 0) + len(free_positions or []), str(path))
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
                device: torch.device | None = None, chunk_rays: int = 4096) -> list[tuple[float, float]]:
    """Free-viewpoint clip from the bitstream alone: views along ``viewpoint_circle``, as GIF/MP4."""
    from lfcomp.evaluation.plots import write_clip

    model, _ = open_bitstream(bitstream, device)
    check_output_size(model, frames, str(bitstream))
    positions = viewpoint_circle(model.grid, frames)
    write_clip(model.render(positions, chunk_rays, True), out, fps=fps)
    return positions
