"""The encoder's first guess of the scene's disparity, from the views alone (a plane sweep).

For each candidate disparity d (pixels per view step), every view is warped onto the centre
view as if the whole scene had disparity d; where d is right, the warped views agree. The
per-pixel d of least colour variance (over a small window) starts the disparity latent, which
training then refines. Only the encoder runs this; the decoder reads the coded disparity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["plane_sweep", "smooth_disparity"]


def plane_sweep(views: torch.Tensor, search: tuple[float, float], candidates: int = 41, window: int = 7) -> torch.Tensor:
    """Per-pixel disparity (H, W) of the centre view's frame from views (U, V, H, W, 3) in [0, 1]."""
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
    return values[torch.stack(costs).argmin(dim=0)]


def smooth_disparity(disparity: torch.Tensor, size: int = 9) -> torch.Tensor:
    """A box-filtered disparity map (the latent grid is coarse anyway)."""
    return F.avg_pool2d(disparity[None, None], size, 1, size // 2, count_include_pad=False)[0, 0]


