"""The scene MLPs and their layer algebra.

``NerfField`` is the paper's field (§2.2: ONE MLP, not NeRF's coarse + fine pair): point and
direction → density and colour, evaluated at every sample of a ray. ``NelfField`` is a neural
light field: the 4-D ray coordinate → colour, one evaluation per ray.

Every weight matrix lives in a named *layer slot*. A slot is a dense ``nn.Linear`` or, after TT
decomposition (§2.4), a ``FactorizedLinear``: two linear layers ``in → r → out`` whose weights are
the TT cores Q1 and Q2. The later stages (ADMM, decomposition, distillation, quantization, the
bitstream) work on these slots by name and never need to know which field they belong to.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn


def positional_encoding(x: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """[x, sin(2^k π x), cos(2^k π x)] for k < num_freqs (NeRF's γ), on the last axis."""
    if num_freqs == 0:
        return x
    freqs = (2.0 ** torch.arange(num_freqs, dtype=x.dtype, device=x.device)) * math.pi
    angles = x.unsqueeze(-1) * freqs  # (..., D, F)
    encoded = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)
    return torch.cat([x, encoded], dim=-1)


def encoded_size(dims: int, num_freqs: int) -> int:
    return dims * (1 + 2 * num_freqs)


class FactorizedLinear(nn.Module):
    """``x → x·Q1 → ·Q2 + b``: a weight of rank r stored as two slim layers (DLR-NeRF)."""

    def __init__(self, in_features: int, out_features: int, rank: int) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=True)

    @property
    def in_features(self) -> int:
        return self.first.in_features

    @property
    def out_features(self) -> int:
        return self.second.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def make_slot(in_features: int, out_features: int, rank: int | None) -> nn.Module:
    return nn.Linear(in_features, out_features) if rank is None else FactorizedLinear(in_features, out_features, rank)


def slot_weight_params(slot: nn.Module) -> list[nn.Parameter]:
    """The weight matrices of a slot, in forward order (one for dense, two for factorized)."""
    if isinstance(slot, FactorizedLinear):
        return [slot.first.weight, slot.second.weight]
    return [slot.weight]


def slot_bias(slot: nn.Module) -> nn.Parameter:
    return slot.second.bias if isinstance(slot, FactorizedLinear) else slot.bias


class NerfField(nn.Module):
    """NeRF MLP: encoded point → density and feature; feature + encoded direction → RGB.

    Slots: ``trunk0..trunk{depth-1}`` (the input is concatenated again before each layer listed in
    ``skips``), ``sigma``, ``feature``, ``color_hidden`` (width/2) and ``rgb``.
    """

    def __init__(self, depth: int, width: int, skips: list[int], pos_freqs: int, dir_freqs: int,
                 factor_ranks: dict[str, int] | None = None) -> None:
        super().__init__()
        self.depth, self.width, self.skips = depth, width, list(skips)
        self.pos_freqs, self.dir_freqs = pos_freqs, dir_freqs
        ranks = factor_ranks or {}
        pos_dim, dir_dim = encoded_size(3, pos_freqs), encoded_size(3, dir_freqs)
        shapes: dict[str, tuple[int, int]] = {}
        for i in range(depth):
            n_in = pos_dim if i == 0 else width
            shapes[f"trunk{i}"] = (n_in + (pos_dim if i in self.skips and i > 0 else 0), width)
        shapes["sigma"] = (width, 1)
        shapes["feature"] = (width, width)
        shapes["color_hidden"] = (width + dir_dim, width // 2)
        shapes["rgb"] = (width // 2, 3)
        self.slots = nn.ModuleDict({name: make_slot(n_in, n_out, ranks.get(name))
                                    for name, (n_in, n_out) in shapes.items()})

    def forward(self, points: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points (N, 3) normalised to about [−1, 1]; directions (N, 3) unit. Returns rgb, sigma."""
        encoded = positional_encoding(points, self.pos_freqs)
        h = encoded
        for i in range(self.depth):
            if i in self.skips and i > 0:
                h = torch.cat([h, encoded], dim=-1)
            h = torch.relu(self.slots[f"trunk{i}"](h))
        sigma = torch.relu(self.slots["sigma"](h)).squeeze(-1)
        feature = self.slots["feature"](h)
        h = torch.cat([feature, positional_encoding(directions, self.dir_freqs)], dim=-1)
        h = torch.relu(self.slots["color_hidden"](h))
        rgb = torch.sigmoid(self.slots["rgb"](h))
        return rgb, sigma

    def named_slots(self) -> Iterator[tuple[str, nn.Module]]:
        """Slots in forward order."""
        return iter(self.slots.items())


class NelfField(nn.Module):
    """Light field MLP: encoded ray (s, t, x, y) ∈ [−1, 1]⁴ → RGB, no volume rendering.

    Slots: ``trunk0..trunk{depth-1}`` (input concatenated again before the layers in ``skips``)
    and ``rgb``.
    """

    def __init__(self, depth: int, width: int, skips: list[int], pos_freqs: int,
                 factor_ranks: dict[str, int] | None = None) -> None:
        super().__init__()
        self.depth, self.width, self.skips, self.pos_freqs = depth, width, list(skips), pos_freqs
        ranks = factor_ranks or {}
        ray_dim = encoded_size(4, pos_freqs)
        shapes = {f"trunk{i}": ((ray_dim if i == 0 else width) + (ray_dim if i in self.skips and i > 0 else 0), width)
                  for i in range(depth)}
        shapes["rgb"] = (width, 3)
        self.slots = nn.ModuleDict({name: make_slot(n_in, n_out, ranks.get(name))
                                    for name, (n_in, n_out) in shapes.items()})

    def forward(self, rays: torch.Tensor) -> torch.Tensor:
        """rays (N, 4) normalised ray coordinates. Returns rgb (N, 3)."""
        encoded = positional_encoding(rays, self.pos_freqs)
        h = encoded
        for i in range(self.depth):
            if i in self.skips and i > 0:
                h = torch.cat([h, encoded], dim=-1)
            h = torch.relu(self.slots[f"trunk{i}"](h))
        return torch.sigmoid(self.slots["rgb"](h))

    def named_slots(self) -> Iterator[tuple[str, nn.Module]]:
        return iter(self.slots.items())
