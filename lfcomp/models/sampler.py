"""Stratified sampling of depths along rays, linear in inverse depth (disparity).

Light field disparity is linear in 1/z, so equal steps in 1/z give equal steps in parallax.
"""

from __future__ import annotations

import torch


def stratified_inverse_depth(num_rays: int, samples: int, near: float, far: float,
                             perturb: bool, generator: torch.Generator | None = None,
                             device: torch.device | str = "cpu") -> torch.Tensor:
    """Depths (num_rays, samples), increasing, one per equal bin of inverse depth.

    ``perturb`` draws a uniform position inside each bin (training); otherwise bin centres are
    used, which makes rendering deterministic (evaluation, encoder and decoder).
    """
    edges = torch.linspace(1.0 / near, 1.0 / far, samples + 1, device=device)
    lower, upper = edges[:-1], edges[1:]
    if perturb:
        u = torch.rand(num_rays, samples, generator=generator, device=device)
    else:
        u = torch.full((num_rays, samples), 0.5, device=device)
    inv_depth = lower + (upper - lower) * u
    return 1.0 / inv_depth
