"""The model kinds: one entry per scene model, the one place that names them.

A kind is one module (``lfcomp.models.<name>``) that defines ``Field`` (its MLP, built from the
``field_keys`` of the ``model`` config section) and ``render_rays`` (rays → colour and depth), plus
one entry here. The workflow, the config schema, the summaries and the plots take the kinds from
``MODEL_KINDS``. Importing this module does not import torch (Snakemake reads it at start-up).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from lfcomp.errors import LfcompError


@dataclass(frozen=True)
class ModelKind:
    """A scene model: its field module, its architecture keys and its name in tables."""

    name: str  # as in config, spec and paths: "nerf"
    display_name: str  # in table titles: "NeRF" (NeRF-org, LR-NeRF, ...)
    module: str  # defines Field and render_rays
    field_keys: tuple[str, ...]  # the `model` config keys that size its field
    learns_camera: bool  # the camera shapes its rays and trains with it (volume rendering)

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


MODEL_KINDS: dict[str, ModelKind] = {
    kind.name: kind for kind in (
        ModelKind("nerf", "NeRF", "lfcomp.models.nerf", ("depth", "width", "skips", "pos_freqs", "dir_freqs"),
                  learns_camera=True),
        ModelKind("nelf", "NeLF", "lfcomp.models.nelf", ("depth", "width", "skips", "pos_freqs"),
                  learns_camera=False),
    )
}


def model_kind(name: str, where: str = "model.kind") -> ModelKind:
    """The registered kind called ``name``; an unknown name is a one-line error."""
    if name not in MODEL_KINDS:
        raise LfcompError(where, f"unknown model kind {name!r} (choose from {', '.join(MODEL_KINDS)})")
    return MODEL_KINDS[name]
