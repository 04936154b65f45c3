"""A neural light field: an MLP from the 4-D ray coordinate (s, t, x, y) straight to colour, one
evaluation per ray and no volume rendering. The camera is kept (and transmitted) but does not
enter the colour."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from lfcomp.models.mlp import encoded_size, make_slot, output_layer, positional_encoding, run_trunk, trunk_shapes

if TYPE_CHECKING:
    from lfcomp.models.scene import SceneModel

__all__ = ["Field", "NelfField", "evaluations_per_ray", "render_rays", "slot_shapes"]


def slot_shapes(depth: int, width: int, skips: list[int], pos_freqs: int) -> dict[str, tuple[int, int]]:
    """(in, out) features of every slot, in forward order (the architecture as arithmetic)."""
    shapes = trunk_shapes(encoded_size(4, pos_freqs), depth, width, list(skips))
    shapes["rgb"] = (width, 3)
    return shapes


def evaluations_per_ray(samples: int) -> int:
    """Field evaluations per rendered ray: one (a light field is not sampled along the ray)."""
    return 1


class NelfField(nn.Module):
    """Light field MLP: encoded ray (s, t, x, y) ∈ [−1, 1]⁴ → RGB. Slots ``trunk0..`` and ``rgb``."""

    def __init__(self, depth: int, width: int, skips: list[int], pos_freqs: int,
                 factor_ranks: dict[str, int] | None = None) -> None:
        super().__init__()
        self.depth, self.width, self.skips, self.pos_freqs = depth, width, list(skips), pos_freqs
        ranks = factor_ranks or {}
        shapes = slot_shapes(depth, width, self.skips, pos_freqs)
        self.slots = nn.ModuleDict({name: make_slot(n_in, n_out, ranks.get(name))
                                    for name, (n_in, n_out) in shapes.items()})

    def forward(self, rays: torch.Tensor) -> torch.Tensor:
        """rays (N, 4) normalised ray coordinates. Returns rgb (N, 3)."""
        h = run_trunk(self.slots, positional_encoding(rays, self.pos_freqs), self.depth, self.skips)
        return torch.sigmoid(output_layer(self.slots["rgb"], h))

    def named_slots(self) -> Iterator[tuple[str, nn.Module]]:
        return iter(self.slots.items())


Field = NelfField


def render_rays(model: SceneModel, s: torch.Tensor, t: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                perturb: bool = False, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour (R, 3) of the rays, one field evaluation each; depth is zeros (a light field has none)."""
    return model.field(model.normalise_rays(s, t, x, y)), torch.zeros_like(s)
