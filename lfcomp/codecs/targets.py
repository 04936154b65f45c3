"""Rate points given as target bitrates, for any codec: the target, and how a result may meet it.

A user asks for bits per pixel (``--target-bpp``, ``target_bpp:`` in the config) or for a file
size (``--target-bytes``); ``fit`` says which result is wanted: ``closest`` (the nearest achieved
rate, either side) or ``under`` (the largest rate that does not exceed the target, as x265's
VBV cap or a file-size budget). How a codec reaches it is its own: QDLR plans ``(rank,
centroids)`` from the architecture before training (``qdlr.rate_model``), the latent codec
searches λ (``latent.rate_control``). Importing this module does not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lfcomp.errors import LfcompError

__all__ = ["FITS", "TOLERANCE", "RateTarget", "check_target_bpp", "pixels_of"]

FITS = ("closest", "under")
TOLERANCE = 0.10  # an achieved rate within ±10 % of the target meets it


def pixels_of(grid: tuple[int, int] | list[int], size: tuple[int, int] | list[int]) -> int:
    """U·V·H·W: the pixels that bpp is counted over."""
    return int(grid[0]) * int(grid[1]) * int(size[0]) * int(size[1])


def check_target_bpp(value: Any, where: str = "--target-bpp") -> float:
    """A target bitrate: a finite number above 0 (and at most 24, the bits of a raw RGB pixel)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value <= 24:
        raise LfcompError(where, f"a target bitrate must be a number of bits per pixel in (0, 24], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RateTarget:
    """A target bitrate for one light field of ``pixels`` pixels."""

    bpp: float
    pixels: int
    fit: str = "closest"

    def __post_init__(self) -> None:
        check_target_bpp(self.bpp)
        if self.fit not in FITS:
            raise LfcompError("--fit", f"unknown fit {self.fit!r} (choose from {', '.join(FITS)})")

    @classmethod
    def from_bytes(cls, target_bytes: int, pixels: int, fit: str = "closest") -> RateTarget:
        if isinstance(target_bytes, bool) or not isinstance(target_bytes, int) or target_bytes < 1:
            raise LfcompError("--target-bytes", f"must be a positive whole number of bytes, got {target_bytes!r}")
        return cls(8 * target_bytes / pixels, pixels, fit)

    @property
    def bytes(self) -> float:
        return self.bpp * self.pixels / 8

    def error(self, achieved_bytes: int) -> float:
        """Achieved rate / target − 1."""
        return achieved_bytes / self.bytes - 1

    def met_by(self, achieved_bytes: int, tolerance: float = TOLERANCE) -> bool:
        """``closest``: within ±tolerance; ``under``: at most the target and within −tolerance."""
        error = self.error(achieved_bytes)
        return -tolerance <= error <= (0.0 if self.fit == "under" else tolerance)

    def best(self, achieved: list[int]) -> int:
        """Index of the result to keep among achieved sizes: the closest on a log scale, or under
        ``under`` the largest that fits (the smallest of all when none does)."""
        if self.fit == "under":
            fitting = [i for i, size in enumerate(achieved) if size <= self.bytes]
            if fitting:
                return max(fitting, key=lambda i: achieved[i])
            return min(range(len(achieved)), key=lambda i: achieved[i])
        return min(range(len(achieved)), key=lambda i: abs(math.log(achieved[i] / self.bytes)))
