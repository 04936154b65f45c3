"""A stage's quality report: PSNR of the views its model renders, on a spread of views."""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from lfcomp.evaluation.floors import floor_summary, trivial_floors, warn_below_floors
from lfcomp.evaluation.metrics import per_view_psnr
from lfcomp.models.scene import SceneModel, render_views

if TYPE_CHECKING:
    from lfcomp.config import TrainConfig

__all__ = ["eval_positions", "evaluate"]

log = logging.getLogger("lfcomp")


def eval_positions(grid: tuple[int, int], eval_views: str | int) -> list[tuple[int, int]]:
    """Views used for a stage's PSNR report: ``"all"``, or k views spread over the grid.

    k = m² gives an m×m lattice including corners and centre; other k give the centre and the
    corners (5), truncated to k.
    """
    U, V = grid
    everything = [(u, v) for u in range(U) for v in range(V)]
    if eval_views == "all" or int(eval_views) >= U * V:
        return everything
    k = int(eval_views)
    m = int(round(math.sqrt(k)))
    if m * m == k and m > 1:
        rows = sorted({int(round(x)) for x in np.linspace(0, U - 1, m)})
        cols = sorted({int(round(x)) for x in np.linspace(0, V - 1, m)})
        return [(u, v) for u in rows for v in cols]
    picks = [(U // 2, V // 2), (0, 0), (0, V - 1), (U - 1, 0), (U - 1, V - 1)]
    return picks[:max(k, 1)]


def _psnr_of(model: SceneModel, views: np.ndarray, positions: list[tuple[int, int]],
             chunk_rays: int) -> dict[str, Any]:
    rendered = render_views(model, [(float(u), float(v)) for u, v in positions], chunk_rays)
    reference = np.stack([views[u, v] for u, v in positions])
    rgb, y = per_view_psnr(reference, rendered)
    return {"psnr_rgb": float(rgb.mean()), "psnr_y": float(y.mean()), "views": [list(p) for p in positions],
            "psnr_rgb_views": rgb.round(4).tolist()}


def evaluate(model: SceneModel, views: np.ndarray, train_cfg: TrainConfig) -> dict[str, Any]:
    """PSNR (RGB and Y), per view and mean, on ``train.eval_views`` of the training views, with the
    scene's trivial floors (a warning names each one the model ends below); held-out views
    (``train.holdout_views``) are reported apart under ``holdout``."""
    started = time.perf_counter()
    holdout = [tuple(map(int, p)) for p in train_cfg.holdout_views]
    positions = [p for p in eval_positions(views.shape[:2], train_cfg.eval_views) if p not in holdout]
    report = _psnr_of(model, views, positions, train_cfg.chunk_rays)
    report["floors"] = floor_summary(trivial_floors(views), positions)
    report["below_floors"] = warn_below_floors(f"{model.kind} model", report["psnr_rgb"], report["floors"])
    if holdout:
        report["holdout"] = _psnr_of(model, views, holdout, train_cfg.chunk_rays)
        log.info("held-out views %s: PSNR %.2f dB", holdout, report["holdout"]["psnr_rgb"])
    log.info("evaluation: %d views rendered in %.1f s", len(positions) + len(holdout), time.perf_counter() - started)
    return report
