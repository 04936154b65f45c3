"""Where and how reproducibly a stage runs: the torch device and the seeds."""

from __future__ import annotations

import typing

import numpy as np
import torch

from lfcomp.config.sections import Precision
from lfcomp.errors import LfcompError

__all__ = ["PRECISIONS", "bf16_supported", "resolve_device", "resolve_precision", "seed_everything"]

PRECISIONS: tuple[str, ...] = typing.get_args(Precision)  # the config's values, in one place


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a clean error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LfcompError("--device", "cuda requested but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise LfcompError("--device", f"unknown device {name!r} (auto, cpu or cuda)")
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (CUDA with bf16, or a CPU with AVX-512 BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(name: str, device: torch.device) -> str:
    """The training precision a stage runs in: ``fp32``, ``bf16`` (autocast) or ``auto`` (bf16 where
    the device computes it natively, fp32 elsewhere; on CUDA, fp32 matmuls may then use TF32).
    Rendering does not follow it: it is the model spec's ``render_precision``, part of the bitstream."""
    if name not in PRECISIONS:
        raise LfcompError("train.precision", f"unknown precision {name!r} (choose from {', '.join(PRECISIONS)})")
    if name != "auto":
        return name
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return "bf16" if bf16_supported(device) else "fp32"


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
