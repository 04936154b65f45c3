"""The latent codec's checkpoint (``latent.pt``, stage ``latent``) as untrusted input.

``lfcomp.engine.checkpoint.load_checkpoint`` calls ``check_checkpoint`` for a ``latent``
checkpoint: the geometry and entropy-model width must lie within the bitstream's documented
``LIMITS`` (checked before anything is built), the ``state_dict`` must hold exactly the tensors that
geometry builds (compared on a weightless "meta" skeleton, all finite), and the rate point and the
report's figures that ``evaluate`` reads must be numbers. ``model_from_checkpoint`` then cannot fail,
and ``check_init`` refuses a warm start from a checkpoint fitted for other views or settings.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from lfcomp.codecs.latent.model import LatentCodecModel, LatentGeometry
from lfcomp.codecs.latent.payload import LIMITS, check_geometry
from lfcomp.errors import LfcompError, short_repr

__all__ = ["check_checkpoint", "check_init", "geometry_of", "model_from_checkpoint"]

REPORT_NUMBERS = ("network_params", "latents", "macs_per_pixel")  # what evaluate copies into metrics.json



def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def geometry_of(ckpt: dict[str, Any], path: str | Path) -> tuple[LatentGeometry, int]:
    """The validated (geometry, ARM width) of a latent checkpoint; nothing is allocated."""
    report, config = ckpt.get("report"), ckpt.get("config")
    try:
        geometry = check_geometry(report.get("geometry") if isinstance(report, dict) else None)
    except ValueError as exc:
        raise LfcompError(path, f"invalid latent-codec geometry ({exc})") from None
    latent_cfg = config.get("latent") if isinstance(config, dict) else None
    arm_hidden = latent_cfg.get("arm_hidden") if isinstance(latent_cfg, dict) else None
    if type(arm_hidden) is not int or not 1 <= arm_hidden <= LIMITS["arm_hidden"]:
        raise LfcompError(path, f"config.latent.arm_hidden = {short_repr(arm_hidden)} is not in 1..{LIMITS['arm_hidden']}")
    return geometry, arm_hidden


def check_checkpoint(ckpt: dict[str, Any], path: str | Path) -> None:
    """Everything the latent codec's stages read from ``ckpt`` fits together (see the module docstring)."""
    from lfcomp.engine.checkpoint import check_holdout_views, check_state_dict

    geometry, arm_hidden = geometry_of(ckpt, path)
    with torch.device("meta"):
        expected = LatentCodecModel(geometry, arm_hidden).state_dict()
    check_state_dict(ckpt.get("state_dict"), expected, path)
    lmbda = ckpt.get("lmbda")
    if not _number(lmbda) or not lmbda > 0:
        raise LfcompError(path, f"lmbda = {short_repr(lmbda)} is not a positive number")
    bad = [key for key in REPORT_NUMBERS if not _number(ckpt["report"].get(key))]
    if bad:
        raise LfcompError(path, f"report lacks the numbers {', '.join(bad)}")
    check_holdout_views(ckpt.get("holdout_views", []), geometry.grid, path)


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path) -> LatentCodecModel:
    """The model of a latent checkpoint that ``load_checkpoint`` accepted."""
    geometry, arm_hidden = geometry_of(ckpt, path)
    model = LatentCodecModel(geometry, arm_hidden)
    model.load_state_dict(ckpt["state_dict"])
    return model


def check_init(ckpt: dict[str, Any], path: str | Path, geometry: LatentGeometry, arm_hidden: int) -> None:
    """A warm start (``latent-fit --init``) must come from a fit whose tensors have this fit's shapes:
    the same views, latent sizes, synthesis and ARM widths."""
    init_geometry, init_arm = geometry_of(ckpt, path)

    def sizes(g: LatentGeometry) -> tuple[Any, ...]:  # what the tensors' shapes depend on
        return g.grid, g.size, g.margin, g.levels, g.disparity_stride, g.hidden

    if sizes(init_geometry) != sizes(geometry) or init_arm != arm_hidden:
        def describe(g: LatentGeometry, arm: int) -> str:
            return (f"{g.grid[0]}x{g.grid[1]} views of {g.size[0]}x{g.size[1]} px, {g.levels} levels, "
                    f"synthesis {list(g.hidden)}, ARM {arm}")
        raise LfcompError(path, f"was fitted for {describe(init_geometry, init_arm)}, not for this fit's "
                                f"{describe(geometry, arm_hidden)}; it cannot warm-start it")
