"""What every field's MLP shares: positional encoding, layer slots and the trunk, written once.

Every weight matrix lives in a named *layer slot*. A slot is a dense ``nn.Linear`` or, after TT
decomposition (§2.4), a ``FactorizedLinear``: two linear layers ``in → r → out`` whose weights are
the TT cores Q1 and Q2. The later stages (ADMM, decomposition, distillation, quantization, the
bitstream) work on these slots by name and never need to know which field they belong to.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import FunctionCtx

__all__ = ["FactorizedLinear", "compute_dtype", "encoded_size", "linear_heads", "linear_of_repeated_concat",
           "make_slot", "output_layer", "positional_encoding", "run_trunk", "slot_bias", "slot_weight_params", "trunk_shapes"]


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype linear layers compute ``x`` in: autocast's (bf16 training) or ``x``'s own.

    Casting an input once to it, before it is concatenated with activations, spares autocast a
    concatenation promoted to fp32 and a second cast; in fp32 it is a no-op, so fp32 arithmetic
    (the decoder's, fixed by the bitstream format) is unchanged."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def positional_encoding(x: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """[x, sin(2^k π x), cos(2^k π x)] for k < num_freqs (NeRF's γ), on the last axis: per input
    dimension its num_freqs sines, then its cosines. Computed in x's precision and returned in the
    dtype linear layers compute in (``compute_dtype``: bf16 under autocast)."""
    if num_freqs == 0:
        return x.to(compute_dtype(x))
    freqs = (2.0 ** torch.arange(num_freqs, dtype=x.dtype, device=x.device)) * math.pi
    return _PositionalEncoding.apply(x, freqs, compute_dtype(x))


class _PositionalEncoding(torch.autograd.Function):
    """γ(x), cast once to the compute dtype, with a gradient with respect to x (a learned camera's
    rays) from the forward pass's sines and cosines: autograd's own computes both again, undoes
    two concatenations and a cast through strided copies (measured: a quick NeRF training step with
    the camera trainable cost 1.15 × one with it frozen). The values are those of before."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, freqs: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        angles = x.unsqueeze(-1) * freqs  # (..., D, F)
        sines, cosines = torch.sin(angles), torch.cos(angles)
        if ctx.needs_input_grad[0]:
            # dγ/dx per dimension, in the layout of its 2F encoded features: 2^k π cos, −2^k π sin
            ctx.save_for_backward(torch.cat([cosines * freqs, sines * -freqs], dim=-1))
        ctx.input_dtype = x.dtype
        return torch.cat([x, torch.cat([sines, cosines], dim=-1).flatten(-2)], dim=-1).to(dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (slopes,) = ctx.saved_tensors
        dims = slopes.shape[-2]
        encoded = grad[..., dims:].reshape(slopes.shape)  # a view: a dimension's 2F features are adjacent
        return (grad[..., :dims] + (encoded * slopes).sum(-1)).to(ctx.input_dtype), None, None


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


def linear_heads(slots: list[nn.Module], x: torch.Tensor) -> list[torch.Tensor]:
    """``[slot(x) for slot in slots]``, as one matmul when every slot is dense (one pass over ``x``,
    forward and backward, instead of one per head). Training only, like the next function."""
    if not all(isinstance(slot, nn.Linear) for slot in slots):
        return [slot(x) for slot in slots]
    out = F.linear(x, torch.cat([slot.weight for slot in slots]), torch.cat([slot.bias for slot in slots]))
    return list(out.split([slot.out_features for slot in slots], dim=-1))


def linear_of_repeated_concat(slot: nn.Module, per_sample: torch.Tensor, per_ray: torch.Tensor,
                              samples: int) -> torch.Tensor:
    """``slot(cat([per_sample, per_ray repeated over each ray's samples]))``, with ``per_ray``'s share
    of the product computed once per ray and added to each of its samples.

    Algebraically equal to the concatenation, not bit-equal: training takes it (a smaller matmul, no
    concatenated copy, forward or backward); rendering keeps the concatenation, the arithmetic the
    bitstream format fixes."""
    first = slot.first if isinstance(slot, FactorizedLinear) else slot
    split = per_sample.shape[-1]
    out = F.linear(per_sample, first.weight[:, :split], first.bias)
    ray_share = F.linear(per_ray, first.weight[:, split:])
    out = (out.view(-1, samples, out.shape[-1]) + ray_share.unsqueeze(1)).view(-1, out.shape[-1])
    return slot.second(out) if isinstance(slot, FactorizedLinear) else out


def output_layer(slot: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``slot(x)`` computed in fp32 even under autocast: the layer that gives the colour keeps full
    precision (a bf16 output would round a colour before the sigmoid to ±1/2 of an 8-bit level;
    measured on a NeLF at 44 dB, bf16 rendering lost 0.12 dB that way and 0.04 dB without). Its cost
    is a few outputs per evaluation. Without autocast it is ``slot(x)``, unchanged."""
    if not torch.is_autocast_enabled(x.device.type):
        return slot(x)
    with torch.autocast(x.device.type, enabled=False):
        return slot(x.float())


def slot_weight_params(slot: nn.Module) -> list[nn.Parameter]:
    """The weight matrices of a slot, in forward order (one for dense, two for factorized)."""
    if isinstance(slot, FactorizedLinear):
        return [slot.first.weight, slot.second.weight]
    return [slot.weight]


def slot_bias(slot: nn.Module) -> nn.Parameter:
    return slot.second.bias if isinstance(slot, FactorizedLinear) else slot.bias


def trunk_shapes(input_dim: int, depth: int, width: int, skips: list[int]) -> dict[str, tuple[int, int]]:
    """(in, out) of the trunk slots ``trunk0..trunk{depth-1}``; the encoded input is concatenated
    again before each layer listed in ``skips`` (except the first)."""
    return {f"trunk{i}": ((input_dim if i == 0 else width) + (input_dim if i in skips and i > 0 else 0), width)
            for i in range(depth)}


def run_trunk(slots: nn.ModuleDict, encoded: torch.Tensor, depth: int, skips: list[int]) -> torch.Tensor:
    """The trunk's ReLU features of an encoded input, in the compute dtype as ``positional_encoding``
    returns it (skip connections as in ``trunk_shapes``)."""
    h = encoded
    for i in range(depth):
        if i in skips and i > 0:
            h = torch.cat([h, encoded], dim=-1)
        h = torch.relu_(slots[f"trunk{i}"](h))  # in place: a fresh buffer per layer costs more than the ReLU
    return h
