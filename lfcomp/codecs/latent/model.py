"""The latent light field: one multi-resolution latent pyramid in the centre view's frame, seen
from any view through a disparity warp, and a small synthesis network.

A view at angular offset (s, t) (grid steps from the centre view, fractional allowed) shows the
scene point that the centre view shows at ``(x + d·s, y + d·t)`` (HCI convention), ``d`` the
disparity in pixels per view step. So every view is rendered by sampling all latent levels at
the warped position, where ``d`` comes from a coarse disparity grid (itself a coded latent),
evaluated twice (at the pixel, then at the first warped position, which follows occluding edges
better than one look-up). The synthesis network maps the sampled latents and (s, t) to RGB, so
view-dependent effects and occlusions cost network capacity, not a second image.

Latents are real numbers during training (uniform noise stands in for rounding, then rounding
with a straight-through gradient) and integers in the bitstream; the synthesis network sees them
multiplied by a fixed per-level ``gain`` so that an integer step is a small change of feature.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LatentCodecModel", "LatentGeometry", "LatentLightField", "Synthesis", "quantize_latent"]


@dataclass(frozen=True)
class LatentGeometry:
    """The sizes of a latent light field: everything the decoder must know to rebuild it."""

    grid: tuple[int, int]  # U, V views
    size: tuple[int, int]  # H, W pixels per view
    margin: int  # latent pixels around the centre view, for what the corner views see beyond it
    levels: int  # latent levels: full resolution, 1/2, 1/4, ...
    disparity_stride: int  # the disparity grid has one value per stride × stride pixels
    disparity_step: float  # pixels per view step per integer unit of the disparity latent
    hidden: tuple[int, ...]  # synthesis layer widths
    gain: float  # feature scale of one integer latent step
    warp: bool = True  # views see the latents through the disparity warp (False: an ablation, d = 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-native (lists for tuples): in checkpoints and the bitstream header."""
        out = asdict(self)
        out["grid"], out["size"], out["hidden"] = list(self.grid), list(self.size), list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatentGeometry:
        """The inverse of ``to_dict`` (for trusted files; the decoder validates a header first)."""
        return cls(**{**data, "grid": tuple(data["grid"]), "size": tuple(data["size"]), "hidden": tuple(data["hidden"])})

    def level_shape(self, level: int) -> tuple[int, int]:
        """(rows, cols) of latent level ``level`` (0: full resolution, with the margin)."""
        H, W = self.size
        f = 2 ** level
        return math.ceil((H + 2 * self.margin) / f), math.ceil((W + 2 * self.margin) / f)

    def disparity_shape(self) -> tuple[int, int]:
        H, W = self.size
        f = self.disparity_stride
        return math.ceil((H + 2 * self.margin) / f) + 1, math.ceil((W + 2 * self.margin) / f) + 1

    def latent_count(self) -> int:
        return sum(r * c for r, c in map(self.level_shape, range(self.levels))) + math.prod(self.disparity_shape())


def quantize_latent(y: torch.Tensor, mode: str) -> torch.Tensor:
    """``noise``: y + U(−½, ½) (training); ``ste``: round with a straight-through gradient;
    ``round``: plain rounding (encoding)."""
    if mode == "noise":
        return y + torch.empty_like(y).uniform_(-0.5, 0.5)
    if mode == "ste":
        return y + (torch.round(y) - y).detach()
    return torch.round(y)


class Synthesis(nn.Module):
    """Per-pixel MLP: sampled latents (one per level) and the view offset (s, t) → RGB."""

    def __init__(self, inputs: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        widths = [inputs, *hidden, 3]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x) + 0.5

    def macs(self) -> int:
        return sum(layer.in_features * layer.out_features for layer in self.layers)


class LatentLightField(nn.Module):
    """Latent pyramid + disparity grid + synthesis: renders any (fractional) view."""

    def __init__(self, geometry: LatentGeometry) -> None:
        super().__init__()
        self.geometry = geometry
        self.latents = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, *geometry.level_shape(level)))
                                        for level in range(geometry.levels))
        self.disparity = nn.Parameter(torch.zeros(1, 1, *geometry.disparity_shape()))
        self.synthesis = Synthesis(geometry.levels + 2, geometry.hidden)

    def all_latents(self) -> list[torch.Tensor]:
        """Every coded latent grid, coarsest first (the order of the bitstream): levels, then disparity."""
        return [self.latents[level] for level in reversed(range(self.geometry.levels))] + [self.disparity]

    def _grid_coords(self, x: torch.Tensor, y: torch.Tensor, shape: tuple[int, int], stride: float,
                     offset: float) -> torch.Tensor:
        """Pixel positions (centre-view frame) → grid_sample's [−1, 1] coordinates of a grid whose
        sample ``i`` sits at pixel ``i·stride − offset``."""
        rows, cols = shape
        gx = (x + offset) / stride / max(cols - 1, 1) * 2 - 1
        gy = (y + offset) / stride / max(rows - 1, 1) * 2 - 1
        return torch.stack([gx, gy], dim=-1)

    def _sample(self, grid: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Bilinear samples (N,) of a (1, 1, rows, cols) grid at coords (N, 2)."""
        out = F.grid_sample(grid, coords.view(1, 1, -1, 2), mode="bilinear", padding_mode="border", align_corners=True)
        return out.view(-1)

    def render(self, s: torch.Tensor, t: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               quantization: str = "round") -> torch.Tensor:
        """RGB (N, 3) of pixels (x, y) of views at offsets (s, t) (all (N,) tensors)."""
        g = self.geometry
        m = float(g.margin)
        # Level l sample i sits at centre-view pixel i·2^l − margin + (2^l − 1)/2 (pixel-centre aligned).
        wx, wy = x, y
        if g.warp:
            dgrid = quantize_latent(self.disparity, quantization) * g.disparity_step
            dshape = g.disparity_shape()
            d = self._sample(dgrid, self._grid_coords(x, y, dshape, g.disparity_stride, m))
            d = self._sample(dgrid, self._grid_coords(x + d * s, y + d * t, dshape, g.disparity_stride, m))
            wx, wy = x + d * s, y + d * t
        features = []
        for level in range(g.levels):
            latent = quantize_latent(self.latents[level], quantization) * g.gain
            f = 2 ** level
            coords = self._grid_coords(wx, wy, latent.shape[-2:], f, m - (f - 1) / 2)
            features.append(self._sample(latent, coords))
        U, V = g.grid
        angular = torch.stack([s / max((V - 1) / 2, 0.5), t / max((U - 1) / 2, 0.5)], dim=-1)
        return self.synthesis(torch.cat([torch.stack(features, dim=-1), angular], dim=-1))

    def render_view(self, u: float, v: float, quantization: str = "round", chunk: int = 1 << 16) -> torch.Tensor:
        """The view at grid position (row u, column v): float RGB (H, W, 3)."""
        g = self.geometry
        (U, V), (H, W) = g.grid, g.size
        device = self.disparity.device
        ys, xs = torch.meshgrid(torch.arange(H, device=device, dtype=torch.float32),
                                torch.arange(W, device=device, dtype=torch.float32), indexing="ij")
        xs, ys = xs.reshape(-1), ys.reshape(-1)
        s = torch.full_like(xs, v - (V - 1) / 2)
        t = torch.full_like(xs, u - (U - 1) / 2)
        out = [self.render(s[i:i + chunk], t[i:i + chunk], xs[i:i + chunk], ys[i:i + chunk], quantization)
               for i in range(0, xs.numel(), chunk)]
        return torch.cat(out).view(H, W, 3)

    def macs_per_pixel(self) -> int:
        """Multiply-accumulates per decoded pixel: bilinear taps (4 per level and disparity look-up)
        and the synthesis network."""
        return 4 * (self.geometry.levels + 2) + self.synthesis.macs()


class LatentCodecModel(nn.Module):
    """What the latent codec trains and codes: the latent light field and the entropy model (ARM)
    of its latents, with the coding order and contexts of every latent (``plan``)."""

    def __init__(self, geometry: LatentGeometry, arm_hidden: int) -> None:
        super().__init__()
        from lfcomp.codecs.latent.entropy_model import ARM, plan_contexts

        self.field = LatentLightField(geometry)
        self.arm = ARM(arm_hidden)
        L = geometry.levels
        shapes = [geometry.level_shape(level) for level in reversed(range(L))] + [geometry.disparity_shape()]
        self.plan = plan_contexts(shapes, [None] + list(range(L - 1)) + [None], [L - 1 - k for k in range(L)] + [0],
                                  [False] * L + [True])

    @property
    def geometry(self) -> LatentGeometry:
        return self.field.geometry

    def flat_latents(self, quantization: str) -> torch.Tensor:
        """All latents, (noisy or rounded), flattened and concatenated in coding order of the grids."""
        return torch.cat([quantize_latent(grid, quantization).reshape(-1) for grid in self.field.all_latents()])

    def latent_bits(self, quantization: str) -> torch.Tensor:
        """Estimated bits of all latents under the ARM (differentiable)."""
        from lfcomp.codecs.latent.entropy_model import gather_context, laplace_bits

        values = self.flat_latents(quantization)
        context = gather_context(values, self.plan)
        mean, log2_scale = self.arm(context)
        return laplace_bits(values[torch.as_tensor(self.plan.position, device=values.device)], mean, log2_scale).sum()

    def forward(self, s: torch.Tensor, t: torch.Tensor, x: torch.Tensor, y: torch.Tensor, perturb: bool = False,
                generator: torch.Generator | None = None, quantization: str = "round") -> tuple[torch.Tensor, torch.Tensor]:
        """Colour of rays (the engine's renderer signature); the depth slot is zeros."""
        return self.field.render(s, t, x, y, quantization), torch.zeros_like(s)
