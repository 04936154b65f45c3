"""The learned probability model of the quantised latents, and its exact integer twin.

Each latent grid is coded in three passes over a 2×2 pattern (checkerboard-like, all positions of
a pass at once): (even, even) positions first, then (odd, odd) given their four diagonal
neighbours, then the rest given their four direct neighbours. Every latent also sees the value of
the next coarser level at its position. A small MLP (the ARM) maps this context to the mean and
the log2-scale of a Laplace distribution, discretised to integers.

Encoder and decoder must compute bit-identical probabilities on any machine, so coding never
runs the float network: it runs ``IntegerARM``, the same MLP with fixed-point weights in int64
arithmetic, and snaps the mean to 1/16 and the log2-scale to 1/8 (a fixed table of scales). Training
runs the float network with the same weights rounded to the fixed-point grid (straight-through),
so the rate it minimises is the rate the integer model codes at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = ["ARM", "CONTEXT_SIZE", "ContextPlan", "IntegerARM", "MEAN_STEPS", "SCALE_TABLE", "gather_context",
           "laplace_bits", "plan_contexts"]

FRAC_BITS = 8  # fixed-point fraction of the ARM's weights and activations
MEAN_STEPS = 16  # the mean is snapped to 1/16
SCALE_LOG2_MIN, SCALE_LOG2_MAX, SCALE_LOG2_STEPS = -3.0, 6.0, 8  # log2-scale snapped to 1/8 in [-3, 6]
SCALE_TABLE = 2.0 ** (np.arange(int(SCALE_LOG2_MIN * SCALE_LOG2_STEPS), int(SCALE_LOG2_MAX * SCALE_LOG2_STEPS) + 1)
                      / SCALE_LOG2_STEPS)
NEIGHBOURS = 4
CONTEXT_SIZE = NEIGHBOURS + 1 + 3 + 2  # neighbours, coarse value, pass one-hot, level index, is-disparity


@dataclass(frozen=True)
class ContextPlan:
    """For every latent of every grid, in coding order: where it is and where its context is.

    ``position``: its index in the concatenation of all flattened grids; ``neighbours`` and
    ``coarse``: indices into the same concatenation, ``-1`` for "no such neighbour" (context 0);
    ``constant``: the constant context features (pass one-hot, level, is-disparity). ``passes``
    lists the slices of the coding order that are decoded together (one pass of one grid).
    """

    position: np.ndarray  # (N,) int64
    neighbours: np.ndarray  # (N, 4) int64
    coarse: np.ndarray  # (N,) int64
    constant: np.ndarray  # (N, 5) int64
    passes: list[slice]
    total: int


def plan_contexts(shapes: list[tuple[int, int]], coarse_of: list[int | None], level_of: list[int],
                  is_disparity: list[bool]) -> ContextPlan:
    """The coding order and contexts of grids of ``shapes`` (coded in list order). ``coarse_of[g]``
    is the grid whose value at (i // 2, j // 2) is grid g's coarse context (None: none)."""
    offsets = np.cumsum([0] + [r * c for r, c in shapes])
    position, neighbours, coarse, constant, passes = [], [], [], [], []
    start = 0
    for g, (rows, cols) in enumerate(shapes):
        ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        ii, jj = ii.ravel(), jj.ravel()

        def flat(i: np.ndarray, j: np.ndarray, grid: int = g) -> np.ndarray:
            r, c = shapes[grid]
            inside = (i >= 0) & (i < r) & (j >= 0) & (j < c)
            return np.where(inside, offsets[grid] + np.clip(i, 0, r - 1) * c + np.clip(j, 0, c - 1), -1)

        groups = [((ii % 2 == 0) & (jj % 2 == 0), None),
                  ((ii % 2 == 1) & (jj % 2 == 1), [(-1, -1), (-1, 1), (1, -1), (1, 1)]),
                  ((ii + jj) % 2 == 1, [(-1, 0), (1, 0), (0, -1), (0, 1)])]
        for p, (mask, offs) in enumerate(groups):
            i, j = ii[mask], jj[mask]
            n = i.size
            if n == 0:
                continue
            position.append(flat(i, j))
            if offs is None:
                neighbours.append(np.full((n, NEIGHBOURS), -1, dtype=np.int64))
            else:
                neighbours.append(np.stack([flat(i + di, j + dj) for di, dj in offs], axis=1))
            c = coarse_of[g]
            coarse.append(flat(i // 2, j // 2, c) if c is not None else np.full(n, -1, dtype=np.int64))
            one_hot = np.zeros((n, 3), dtype=np.int64)
            one_hot[:, p] = 1
            constant.append(np.concatenate([one_hot, np.full((n, 1), level_of[g]), np.full((n, 1), int(is_disparity[g]))],
                                           axis=1))
            passes.append(slice(start, start + n))
            start += n
    return ContextPlan(np.concatenate(position), np.concatenate(neighbours), np.concatenate(coarse),
                       np.concatenate(constant), passes, int(offsets[-1]))


def gather_context(values: torch.Tensor, plan: ContextPlan, rows: slice | None = None) -> torch.Tensor:
    """Context features (N, CONTEXT_SIZE) of the latents ``rows`` of the coding order, from the flat
    ``values`` (all grids concatenated); missing neighbours read 0."""
    rows = rows or slice(0, len(plan.position))
    padded = torch.cat([values, values.new_zeros(1)])  # index -1 reads the trailing zero
    neighbours = torch.as_tensor(plan.neighbours[rows], device=values.device)
    coarse = torch.as_tensor(plan.coarse[rows], device=values.device)
    constant = torch.as_tensor(plan.constant[rows], device=values.device, dtype=values.dtype)
    return torch.cat([padded[neighbours], padded[coarse].unsqueeze(1), constant], dim=1)


def _fixed(w: torch.Tensor) -> torch.Tensor:
    """Round to the fixed-point grid with a straight-through gradient."""
    scale = float(1 << FRAC_BITS)
    return w + (torch.round(w * scale) / scale - w).detach()


class ARM(nn.Module):
    """Context → (mean, log2-scale) of a Laplace: one hidden ReLU layer, fixed-point weights."""

    def __init__(self, hidden: int = 12) -> None:
        super().__init__()
        self.hidden = nn.Linear(CONTEXT_SIZE, hidden)
        self.out = nn.Linear(hidden, 2)
        with torch.no_grad():  # start from a wide, zero-mean prior
            self.out.weight.mul_(0.1)
            self.out.bias.copy_(torch.tensor([0.0, 2.0]))

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(context @ _fixed(self.hidden.weight).T + _fixed(self.hidden.bias))
        out = h @ _fixed(self.out.weight).T + _fixed(self.out.bias)
        return out[:, 0], out[:, 1].clamp(SCALE_LOG2_MIN, SCALE_LOG2_MAX)

    def integer(self) -> IntegerARM:
        scale = float(1 << FRAC_BITS)
        q = [torch.round(p.detach().double().cpu() * scale).long().numpy() for p in
             (self.hidden.weight, self.hidden.bias, self.out.weight, self.out.bias)]
        return IntegerARM(*q)


@dataclass(frozen=True)
class IntegerARM:
    """The ARM in exact int64 arithmetic (what encoder and decoder both run)."""

    w1: np.ndarray  # (hidden, CONTEXT_SIZE)
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (2, hidden)
    b2: np.ndarray  # (2,)

    def parameters(self) -> list[np.ndarray]:
        return [self.w1, self.b1, self.w2, self.b2]

    def predict(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer contexts (N, CONTEXT_SIZE) → snapped (mean, scale), float64, exactly reproducible."""
        x = context.astype(np.int64)
        h = np.maximum(x @ self.w1.T + self.b1, 0)  # units 2^-FRAC
        out = (h @ self.w2.T + (self.b2 << FRAC_BITS)) >> FRAC_BITS  # units 2^-FRAC (floor)
        step = 1 << (FRAC_BITS - 4)  # 1/16 in fixed point (MEAN_STEPS = 16)
        mean16 = (out[:, 0] + step // 2) // step
        per = (1 << FRAC_BITS) // SCALE_LOG2_STEPS
        index = np.clip((out[:, 1] + per // 2) // per, int(SCALE_LOG2_MIN * SCALE_LOG2_STEPS),
                        int(SCALE_LOG2_MAX * SCALE_LOG2_STEPS)) - int(SCALE_LOG2_MIN * SCALE_LOG2_STEPS)
        return mean16.astype(np.float64) / MEAN_STEPS, SCALE_TABLE[index]


def laplace_bits(values: torch.Tensor, mean: torch.Tensor, log2_scale: torch.Tensor) -> torch.Tensor:
    """−log2 P(values) under a Laplace(mean, 2^log2_scale) discretised to unit bins (differentiable)."""
    scale = torch.exp2(log2_scale)

    def cdf(x: torch.Tensor) -> torch.Tensor:
        z = (x - mean) / scale
        return 0.5 + 0.5 * torch.sign(z) * (1 - torch.exp(-z.abs()))

    p = cdf(values + 0.5) - cdf(values - 0.5)
    return -torch.log2(p.clamp_min(2.0 ** -24))
