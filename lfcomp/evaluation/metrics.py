"""Distortion and rate metrics shared by the codec and the anchors.

PSNR is computed per view on 8-bit RGB (all three channels pooled) and on luma Y (BT.601,
full range, from 8-bit RGB), then averaged over views. bpp = bits / (U·V·H·W).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lfcomp.errors import LfcompError


def psnr(reference: np.ndarray, test: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two equally shaped arrays; ``inf`` when identical."""
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def rgb_to_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma Y' in [0, 255] (float) from 8-bit RGB (..., 3)."""
    rgb = rgb.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def per_view_psnr(reference: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-view PSNR (RGB, Y) of two light fields (..., H, W, 3); leading axes index views."""
    lead = reference.shape[:-3]
    ref = reference.reshape(-1, *reference.shape[-3:])
    tst = test.reshape(-1, *test.shape[-3:])
    rgb = np.array([psnr(r, t) for r, t in zip(ref, tst)])
    y = np.array([psnr(rgb_to_luma(r), rgb_to_luma(t)) for r, t in zip(ref, tst)])
    return rgb.reshape(lead), y.reshape(lead)


def bits_per_pixel(num_bytes: int, grid: tuple[int, int], size: tuple[int, int]) -> float:
    """bpp = 8·bytes / (U·V·H·W): the rate of the whole light field per pixel of all its views."""
    return 8.0 * num_bytes / (grid[0] * grid[1] * size[0] * size[1])


def finite_or_none(value: float) -> float | None:
    """JSON-safe rounded number; None for inf (identical views) or nan."""
    return None if math.isinf(value) or math.isnan(value) else round(float(value), 4)


def distortion_metrics(reference: np.ndarray, decoded: np.ndarray) -> dict[str, Any]:
    """The distortion block of every codec's metrics.json (neural codec and anchors alike):
    grid, size, mean and per-view PSNR on RGB and Y. Identical views (inf dB) are left out of
    the means and stored as null."""
    rgb, y = per_view_psnr(reference, decoded)
    return {
        "grid": [int(reference.shape[0]), int(reference.shape[1])],
        "size": [int(reference.shape[2]), int(reference.shape[3])],
        "psnr_rgb": finite_or_none(rgb[np.isfinite(rgb)].mean()) if np.isfinite(rgb).any() else None,
        "psnr_y": finite_or_none(y[np.isfinite(y)].mean()) if np.isfinite(y).any() else None,
        "psnr_rgb_views": [[finite_or_none(v) for v in row] for row in rgb],
        "psnr_y_views": [[finite_or_none(v) for v in row] for row in y],
    }


MAX_METRICS_BYTES = 16 << 20  # a metrics.json is a few kB; larger files are not read


def read_metrics(path: Path) -> dict[str, Any]:
    """A metrics.json written by ``evaluate`` or ``anchor``; unreadable, binary, oversized or
    (pathologically) deeply nested files are clean errors."""
    try:
        if path.is_file() and path.stat().st_size > MAX_METRICS_BYTES:
            raise LfcompError(path, f"{path.stat().st_size} bytes is too large for a metrics file")
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LfcompError(path, f"cannot read metrics ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise LfcompError(path, f"not a text (UTF-8) file ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise LfcompError(path, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise LfcompError(path, "not valid JSON (nested too deeply)") from None
    if not isinstance(metrics, dict):
        raise LfcompError(path, "metrics must be a JSON object")
    return metrics
