"""Structured light field camera (paper §2.2): views on a regular grid, no COLMAP.

Every view is a pinhole camera of focal length ``f`` (pixels) translated by ``Δ·(s, −ρ·t, 0)``, where
``(s, t)`` is the view's horizontal and vertical offset from the central view in grid steps and ``ρ``
the vertical view step as a multiple of the horizontal one (1 for a square grid; −1 when the rows
of the grid run the other way, as a capture may store them; a gantry may step differently). Real
array light fields (HCI) are rendered with shifted sensors that converge on a focus plane, so the
disparity per view step takes both signs; a sensor-shift term ``κ`` models that:

    disparity(z) = f·Δ·(1/z − κ)      (pixels per horizontal view step; I_view(p) = I_centre(p + s·disparity),
                                       ρ·disparity per vertical step)

``f``, ``Δ`` and ``κ`` are trainable; ``ρ`` is fixed, part of the model's spec (estimated at ingest). They are initialised from the light field's known disparity
range (HCI ``parameters.cfg``) or a configured default, mapped onto the sampled depth range
``[near, far]``, because a self-calibrated baseline otherwise tends to collapse towards zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def initial_camera(height: int, width: int, disparity_range: tuple[float, float], near: float,
                   far: float, focal_px: float | None = None) -> dict[str, float]:
    """Initial (f, Δ, κ) that map ``disparity_range`` onto inverse depths ``[1/far, 1/near]``.

    A 25% margin on each side of the disparity range keeps the true scene inside the sampled
    frustum. ``focal_px`` defaults to 1.2 × the image width (a moderate field of view) when the
    light field does not state it.
    """
    d_min, d_max = sorted(float(d) for d in disparity_range)
    margin = 0.25 * max(d_max - d_min, 1e-3)
    d_min, d_max = d_min - margin, d_max + margin
    focal = float(focal_px) if focal_px else 1.2 * width
    f_delta = (d_max - d_min) / (1.0 / near - 1.0 / far)
    kappa = 1.0 / near - d_max / f_delta
    return {"focal": focal, "baseline": f_delta / focal, "kappa": kappa}


class LightFieldCamera(nn.Module):
    """Generates rays for any (fractional) view position (s, t) and pixel (x, y)."""

    def __init__(self, height: int, width: int, focal: float, baseline: float, kappa: float,
                 trainable: bool = True, vertical_step: float = 1.0) -> None:
        super().__init__()
        self.height = int(height)
        self.width = int(width)
        self.vertical_step = float(vertical_step)  # ρ: geometry from the spec, not a trained parameter
        # f is kept positive through its logarithm; Δ and κ are signed.
        self.log_focal = nn.Parameter(torch.tensor(math.log(focal)), requires_grad=trainable)
        self.baseline = nn.Parameter(torch.tensor(float(baseline)), requires_grad=trainable)
        self.kappa = nn.Parameter(torch.tensor(float(kappa)), requires_grad=trainable)

    @property
    def focal(self) -> torch.Tensor:
        return self.log_focal.exp()

    def values(self) -> dict[str, float]:
        """Current f, Δ, κ as plain floats (what the bitstream carries)."""
        with torch.no_grad():
            return {"focal": float(self.focal), "baseline": float(self.baseline), "kappa": float(self.kappa)}

    def disparity_per_view(self, depth: torch.Tensor) -> torch.Tensor:
        """Disparity in pixels per horizontal view step of a point at ``depth``."""
        return self.focal * self.baseline * (1.0 / depth - self.kappa)

    def rays(self, s: torch.Tensor, t: torch.Tensor, x: torch.Tensor,
             y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Origins and (unnormalised, z = −1) directions of the rays through pixel centres.

        ``s``/``t``: horizontal/vertical view offsets from the centre view (grid steps, may be
        fractional); ``x``/``y``: pixel column/row indices. All 1-D tensors of equal length.
        """
        f, delta, kappa = self.focal, self.baseline, self.kappa
        delta_t = delta * self.vertical_step  # × 1.0 is exact: square grids render as before
        origins = torch.stack([delta * s, -delta_t * t, torch.zeros_like(s)], dim=-1)
        dx = (x + 0.5 - self.width / 2) / f - kappa * delta * s
        dy = -(y + 0.5 - self.height / 2) / f + kappa * delta_t * t
        directions = torch.stack([dx, dy, -torch.ones_like(dx)], dim=-1)
        return origins, directions
