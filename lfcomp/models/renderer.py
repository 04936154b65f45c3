"""Volume rendering (NeRF quadrature): colour and expected depth of each ray."""

from __future__ import annotations

import torch


def volume_render(rgb: torch.Tensor, sigma: torch.Tensor, depths: torch.Tensor,
                  directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Alpha-composite samples front to back.

    rgb (R, S, 3), sigma (R, S), depths (R, S) along −z, directions (R, 3) with z = −1.
    Returns colour (R, 3), expected depth (R,) and weights (R, S). The last interval is open, so
    whatever the ray has not hit by ``far`` takes the last sample's colour.
    """
    ray_scale = directions.norm(dim=-1, keepdim=True)
    deltas = depths[:, 1:] - depths[:, :-1]
    deltas = torch.cat([deltas, torch.full_like(deltas[:, :1], 1e10)], dim=-1) * ray_scale
    alpha = 1.0 - torch.exp(-sigma * deltas)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1.0 - alpha + 1e-10], dim=-1),
                                  dim=-1)[:, :-1]
    weights = alpha * transmittance
    colour = (weights.unsqueeze(-1) * rgb).sum(dim=1)
    depth = (weights * depths).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-10)
    return colour, depth, weights
