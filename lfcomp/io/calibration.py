"""A light field's disparity, from its views alone (a plane sweep): calibration when none is given.

For each candidate disparity d (pixels per view step), every view is warped onto the centre
view as if the whole scene had disparity d; where d is right, the warped views agree. The
per-pixel d of least colour variance (over a small window) is the estimate.

* ``estimate_disparity_ranges``: at ingest, the disparity range per angular axis (the centre row
  for a horizontal view step, the centre column for a vertical one: the two can differ in scale
  and sign), robust percentiles of the confident pixels; it initialises the NeRF camera of a
  light field without ``parameters.cfg``.
* ``plane_sweep``/``smooth_disparity``: the latent codec's first guess of its disparity latent
  (only its encoder runs this; the decoder reads the coded disparity).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["estimated_range", "estimate_disparity_ranges", "plane_sweep", "smooth_disparity"]

MAX_SIDE = 256  # the sweep runs on views of at most this many pixels per side
SEARCH = (-4.0, 4.0)  # px per view step searched at ingest (HCI: ±1.6 at 512², Lytro: well under 1)


def plane_sweep(views: torch.Tensor, search: tuple[float, float], candidates: int = 41, window: int = 7,
                with_confidence: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel disparity (H, W) of the centre view's frame from views (U, V, H, W, 3) in [0, 1];
    with ``with_confidence``, also how much the best candidate beats the median one (0..1)."""
    U, V, H, W, _ = views.shape
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    values = torch.linspace(float(search[0]), float(search[1]), candidates)
    stack = views.permute(0, 1, 4, 2, 3).reshape(U * V, 3, H, W)
    s = torch.tensor([v - (V - 1) / 2 for u in range(U) for v in range(V)], dtype=torch.float32).view(-1, 1, 1)
    t = torch.tensor([u - (U - 1) / 2 for u in range(U) for v in range(V)], dtype=torch.float32).view(-1, 1, 1)
    costs = []
    for d in values:
        # the centre pixel (x, y) appears in view (s, t) at (x − d·s, y − d·t)
        gx = (xs - d * s) / max(W - 1, 1) * 2 - 1
        gy = (ys - d * t) / max(H - 1, 1) * 2 - 1
        warped = F.grid_sample(stack, torch.stack([gx, gy], dim=-1), align_corners=True, padding_mode="border")
        variance = warped.var(dim=0, unbiased=False).sum(dim=0)
        costs.append(F.avg_pool2d(variance[None, None], window, 1, window // 2, count_include_pad=False)[0, 0])
    stacked = torch.stack(costs)
    best = values[stacked.argmin(dim=0)]
    if not with_confidence:
        return best
    median = stacked.median(dim=0).values
    return best, 1.0 - stacked.min(dim=0).values / median.clamp_min(1e-12)


def estimate_disparity_ranges(views: np.ndarray, search: tuple[float, float] = SEARCH, candidates: int = 81,
                              percentiles: tuple[float, float] = (2.0, 98.0)) -> dict[str, Any]:
    """Disparity range (px per view step) along each angular axis, from 8-bit views (U, V, H, W, 3):
    ``horizontal`` from the centre row (per column step), ``vertical`` from the centre column (per
    row step), each the ``percentiles`` of the pixels whose best candidate clearly beats the rest.
    An axis with a single view has no estimate (None)."""
    U, V, H, W, _ = views.shape
    factor = max(1, math.ceil(max(H, W) / MAX_SIDE))  # large views: sweep a box-downsampled copy
    small = views[:, :, :H // factor * factor, :W // factor * factor].astype(np.float32) / 255.0
    small = small.reshape(U, V, H // factor, factor, W // factor, factor, 3).mean(axis=(3, 5))
    tensor = torch.from_numpy(small)
    out: dict[str, Any] = {"method": f"plane sweep over {search[0]:g}..{search[1]:g} px/view step, "
                                     f"{candidates} candidates, {percentiles[0]:g}-{percentiles[1]:g} percentiles "
                                     f"of confident pixels, views downsampled {factor}×"}
    for axis, line in (("horizontal", tensor[(U - 1) // 2: (U - 1) // 2 + 1]),
                       ("vertical", tensor[:, (V - 1) // 2: (V - 1) // 2 + 1])):
        if line.shape[0] * line.shape[1] < 2:
            out[axis] = None
            continue
        disparity, confidence = plane_sweep(line, (search[0] / factor, search[1] / factor), candidates,
                                            with_confidence=True)
        confident = disparity[confidence >= torch.quantile(confidence, 0.5)] * factor
        low, high = np.percentile(confident.numpy(), percentiles)
        out[axis] = [round(float(low), 3), round(float(high), 3)]
    return out


def smooth_disparity(disparity: torch.Tensor, size: int = 9) -> torch.Tensor:
    """A box-filtered disparity map (the latent grid is coarse anyway)."""
    return F.avg_pool2d(disparity[None, None], size, 1, size // 2, count_include_pad=False)[0, 0]




def estimated_range(calibration: Any) -> tuple[list[float] | None, str]:
    """One disparity range for a camera with one baseline: the union of both axes' estimates, and
    a note when the axes disagree (one flipped, or a different view spacing per axis)."""
    if not isinstance(calibration, dict):
        return None, ""
    ranges = [r for r in (calibration.get(a) for a in ("horizontal", "vertical"))
              if isinstance(r, list) and len(r) == 2 and all(type(x) in (int, float) and math.isfinite(x) for x in r)]
    if not ranges:
        return None, ""
    note = ""
    if len(ranges) == 2:
        (h_low, h_high), (v_low, v_high) = ranges
        h_mid, v_mid, span = (h_low + h_high) / 2, (v_low + v_high) / 2, max(h_high - h_low, v_high - v_low, 0.1)
        if abs(h_mid + v_mid) < abs(h_mid - v_mid) and abs(h_mid - v_mid) > span / 2:
            note = (f"the axes disagree (horizontal {ranges[0]}, vertical {ranges[1]} px/view step: one "
                    "flipped?); the camera has one baseline")
    return [min(r[0] for r in ranges), max(r[1] for r in ranges)], note
