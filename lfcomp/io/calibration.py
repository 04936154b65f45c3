"""A light field's disparity, from its views alone (a plane sweep): calibration when none is given.

For each candidate disparity d (pixels per view step), every view is warped onto the centre
view as if the whole scene had disparity d; where d is right, the warped views agree. The
per-pixel d of least colour variance (over a small window) is the estimate.

* ``estimate_disparity_ranges``: at ingest, the disparity range per angular axis (the centre row
  for a horizontal view step, the centre column for a vertical one: the two can differ in scale
  and sign), robust percentiles of the confident pixels, and the vertical view step relative to
  the horizontal one (from how the two axes' disparity maps agree); they initialise the NeRF camera
  of a light field without ``parameters.cfg`` (``disparity_estimate``).
* ``plane_sweep``/``smooth_disparity``: the latent codec's first guess of its disparity latent
  (only its encoder runs this; the decoder reads the coded disparity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lfcomp.models.spec import VERTICAL_STEP_LIMIT, is_vertical_step

__all__ = ["DisparityEstimate", "disparity_estimate", "estimate_disparity_ranges", "plane_sweep",
           "smooth_disparity", "vertical_step"]

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
    row step), each the ``percentiles`` of the pixels whose best candidate clearly beats the rest;
    and ``vertical_step``, the vertical view step as a signed multiple of the horizontal one (−1: an
    axis that runs the other way), when the two axes' disparity maps are clearly correlated.

    Each axis is swept twice: over ``search``, then with as many candidates over the range the first
    sweep found (a few of its steps wider), so a capture of sub-pixel parallax is resolved as finely
    as a wide-baseline one. An axis with a single view has no estimate (None)."""
    U, V, H, W, _ = views.shape
    factor = max(1, math.ceil(max(H, W) / MAX_SIDE))  # large views: sweep a box-downsampled copy
    small = views[:, :, :H // factor * factor, :W // factor * factor].astype(np.float32) / 255.0
    small = small.reshape(U, V, H // factor, factor, W // factor, factor, 3).mean(axis=(3, 5))
    tensor = torch.from_numpy(small)
    out: dict[str, Any] = {"method": f"plane sweep over {search[0]:g}..{search[1]:g} px/view step, "
                                     f"{candidates} candidates, refined over the range found, "
                                     f"{percentiles[0]:g}-{percentiles[1]:g} percentiles of confident pixels, "
                                     f"views downsampled {factor}×"}
    maps: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    coarse = (search[0] / factor, search[1] / factor)
    step = (coarse[1] - coarse[0]) / max(candidates - 1, 1)
    for axis, line in (("horizontal", tensor[(U - 1) // 2: (U - 1) // 2 + 1]),
                       ("vertical", tensor[:, (V - 1) // 2: (V - 1) // 2 + 1])):
        if line.shape[0] * line.shape[1] < 2:
            out[axis] = None
            continue
        disparity, confidence = plane_sweep(line, coarse, candidates, with_confidence=True)
        confident = confidence >= torch.quantile(confidence, 0.5)
        low, high = np.percentile(disparity[confident].numpy(), percentiles)
        fine = (max(coarse[0], float(low) - 2 * step), min(coarse[1], float(high) + 2 * step))
        disparity = plane_sweep(line, fine, candidates)
        low, high = np.percentile(disparity[confident].numpy() * factor, percentiles)
        out[axis] = [round(float(low), 3), round(float(high), 3)]
        maps[axis] = (disparity, confident)
    if len(maps) == 2:
        out["vertical_step"] = vertical_step(*maps["horizontal"], *maps["vertical"])
    return out


def vertical_step(horizontal: torch.Tensor, horizontal_confident: torch.Tensor, vertical: torch.Tensor,
                  vertical_confident: torch.Tensor, min_correlation: float = 0.5) -> float | None:
    """The vertical view step as a multiple of the horizontal one, from the two axes' disparity maps
    of the centre view: a scene point moves ``ρ`` times as far per row step as per column step, so
    over the pixels confident on both axes the vertical map is ``ρ`` × the horizontal one (least
    squares through the origin). None when the maps are not correlated by at least
    ``min_correlation`` (a scene of almost one depth, or too little texture, says nothing)."""
    both = horizontal_confident & vertical_confident
    h, v = horizontal[both].double(), vertical[both].double()
    if h.numel() < 16 or float(h.std()) == 0.0 or float(v.std()) == 0.0:
        return None
    correlation = float(torch.corrcoef(torch.stack([h, v]))[0, 1])
    if not abs(correlation) >= min_correlation:
        return None
    ratio = float((h * v).sum() / (h * h).sum())
    return round(float(np.clip(abs(ratio), 1 / VERTICAL_STEP_LIMIT, VERTICAL_STEP_LIMIT))
                 * math.copysign(1.0, ratio), 3)


def smooth_disparity(disparity: torch.Tensor, size: int = 9) -> torch.Tensor:
    """A box-filtered disparity map (the latent grid is coarse anyway)."""
    return F.avg_pool2d(disparity[None, None], size, 1, size // 2, count_include_pad=False)[0, 0]




@dataclass(frozen=True)
class DisparityEstimate:
    """What an ingest-time calibration gives the camera: one disparity range in pixels per
    horizontal view step (the vertical axis's estimate divided by ``vertical_step``), the vertical
    view step as a signed multiple of the horizontal one, and a note for the log (a warning when
    ``doubtful``: the axes disagree and no vertical step explains it)."""

    disparity_range: list[float]
    vertical_step: float
    note: str = ""
    doubtful: bool = False


def disparity_estimate(calibration: Any) -> DisparityEstimate | None:
    """The camera's start from a stored calibration (None when there is none or it is unusable).
    Both axes' ranges are joined in horizontal units; a calibration without ``vertical_step``
    (written before it existed, or from uncorrelated maps) assumes equal steps, and notes when the
    axes' ranges disagree as if one were flipped."""
    if not isinstance(calibration, dict):
        return None
    ranges = {a: r for a in ("horizontal", "vertical")
              if isinstance(r := calibration.get(a), list) and len(r) == 2
              and all(type(x) in (int, float) and math.isfinite(x) for x in r)}
    if not ranges:
        return None
    step = calibration.get("vertical_step")
    known = is_vertical_step(step)
    ratio = float(step) if known else 1.0
    note, doubtful = "", False
    if "vertical" in ranges:
        ranges["vertical"] = sorted(x / ratio for x in ranges["vertical"])
    if known and ratio < 0:
        note = f"the vertical axis runs the other way (vertical view step {ratio:g} × the horizontal one)"
    elif known and ratio != 1.0:
        note = f"the vertical view step is {ratio:g} × the horizontal one"
    elif not known and len(ranges) == 2:
        (h_low, h_high), (v_low, v_high) = ranges["horizontal"], ranges["vertical"]
        h_mid, v_mid, span = (h_low + h_high) / 2, (v_low + v_high) / 2, max(h_high - h_low, v_high - v_low, 0.1)
        if abs(h_mid + v_mid) < abs(h_mid - v_mid) and abs(h_mid - v_mid) > span / 2:
            note, doubtful = (f"the axes disagree (horizontal {ranges['horizontal']}, vertical {ranges['vertical']} "
                              "px/view step: one flipped?) and the calibration states no vertical step"), True
    joined = [min(r[0] for r in ranges.values()), max(r[1] for r in ranges.values())]
    return DisparityEstimate([round(x, 4) for x in joined], ratio, note, doubtful)
