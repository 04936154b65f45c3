"""RGB ↔ full-range BT.601 Y'CbCr (the JPEG/JFIF matrix) in numpy, with 4:4:4 and 4:2:0 planes.

The video anchors convert colour here rather than in FFmpeg (whose default is limited-range
BT.601), so that the conversion is exact, documented and the same for every codec:

    Y  = 0.299 R + 0.587 G + 0.114 B
    Cb = 128 + (B − Y) / 1.772
    Cr = 128 + (R − Y) / 1.402

all in [0, 255] (no headroom). 4:2:0 chroma is the mean of each 2×2 block; upsampling back is
nearest neighbour (each chroma sample repeated over its 2×2 block). Odd heights or widths are
padded by repeating the last row/column before subsampling, so chroma planes are ⌈H/2⌉×⌈W/2⌉.
"""

from __future__ import annotations

import numpy as np

from lfcomp.errors import LfcompError

CHROMAS = ("444", "420")

KR, KB = 0.299, 0.114
KG = 1.0 - KR - KB
#: Rows give Y, Cb, Cr (before the +128 chroma offset) from R, G, B.
RGB_TO_YCBCR = np.array([
    [KR, KG, KB],
    [-KR / (2 * (1 - KB)), -KG / (2 * (1 - KB)), 0.5],
    [0.5, -KG / (2 * (1 - KR)), -KB / (2 * (1 - KR))],
])
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR)
_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """Full-range BT.601 Y'CbCr (float64, same shape) of RGB (..., 3) in [0, 255]."""
    return rgb.astype(np.float64) @ RGB_TO_YCBCR.T + _OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """The exact inverse of ``rgb_to_ycbcr`` (float64, no rounding or clipping)."""
    return (ycbcr.astype(np.float64) - _OFFSET) @ YCBCR_TO_RGB.T


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _check_chroma(chroma: str) -> None:
    if chroma not in CHROMAS:
        raise LfcompError("--chroma", f"unknown chroma format {chroma!r} (choose from {', '.join(CHROMAS)})")


def chroma_shape(height: int, width: int, chroma: str) -> tuple[int, int]:
    """(height, width) of the Cb and Cr planes of an H×W image."""
    _check_chroma(chroma)
    return (height, width) if chroma == "444" else ((height + 1) // 2, (width + 1) // 2)


def rgb_to_planes(rgb: np.ndarray, chroma: str = "444") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, Cb, Cr uint8 planes of one uint8 RGB image (H, W, 3); chroma subsampled for 4:2:0."""
    _check_chroma(chroma)
    ycc = rgb_to_ycbcr(rgb)
    y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    if chroma == "420":
        H, W = y.shape
        pad = ((0, H % 2), (0, W % 2))
        cb, cr = (np.pad(c, pad, mode="edge") for c in (cb, cr))
        cb, cr = (c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3)) for c in (cb, cr))
    return _to_uint8(y), _to_uint8(cb), _to_uint8(cr)


def planes_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, chroma: str = "444") -> np.ndarray:
    """uint8 RGB (H, W, 3) from Y, Cb, Cr planes; 4:2:0 chroma is upsampled by repetition."""
    _check_chroma(chroma)
    H, W = y.shape
    if cb.shape != chroma_shape(H, W, chroma) or cr.shape != cb.shape:
        raise LfcompError("chroma planes", f"{chroma} chroma planes {cb.shape}, {cr.shape} "
                                           f"do not fit a {H}×{W} luma plane")
    if chroma == "420":
        cb, cr = (np.repeat(np.repeat(c, 2, axis=0), 2, axis=1)[:H, :W] for c in (cb, cr))
    return _to_uint8(ycbcr_to_rgb(np.stack([y, cb, cr], axis=-1)))
