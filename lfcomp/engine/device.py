"""Where and how reproducibly a stage runs: the torch device and the seeds."""

from __future__ import annotations

import numpy as np
import torch

from lfcomp.errors import LfcompError

__all__ = ["resolve_device", "seed_everything"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a clean error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LfcompError("--device", "cuda requested but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise LfcompError("--device", f"unknown device {name!r} (auto, cpu or cuda)")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
