"""Stage checkpoints (``.pt``): the scene spec, camera values, weights and each stage's report.

A checkpoint is a plain dict of tensors and JSON-able values (loaded with ``weights_only=True``):
``format``, ``stage`` (nerf | lowrank | distill | quantize), ``spec``, ``camera``, ``state_dict``,
``history`` (training curve), ``report`` (PSNR, parameter count, ...), ``stages`` (the reports of
all stages so far, for the paper's Table 2) and stage-specific extras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lfcomp.artifacts import atomic_output
from lfcomp.errors import LfcompError
from lfcomp.models.scene import SceneModel

FORMAT = "lfcomp-checkpoint-v1"


def save_checkpoint(path: str | Path, stage: str, model: SceneModel, **extra: Any) -> None:
    """Write a checkpoint atomically."""
    payload = {
        "format": FORMAT,
        "stage": stage,
        "spec": model.spec,
        "camera": model.camera.values(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, stages: tuple[str, ...]) -> dict[str, Any]:
    """Read and validate a checkpoint written by one of ``stages``."""
    path = Path(path)
    if not path.is_file():
        raise LfcompError(path, "no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or truncated files
        raise LfcompError(path, f"not a readable lfcomp checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise LfcompError(path, "not an lfcomp checkpoint (missing format tag)")
    if ckpt.get("stage") not in stages:
        raise LfcompError(path, f"is a {ckpt.get('stage')!r} checkpoint, expected {' or '.join(stages)}")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], camera_trainable: bool = False) -> SceneModel:
    model = SceneModel(ckpt["spec"], ckpt["camera"], camera_trainable=camera_trainable)
    model.load_state_dict(ckpt["state_dict"])
    return model
