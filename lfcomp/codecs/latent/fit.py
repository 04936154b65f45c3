"""Training the latent codec at one rate point: loss = MSE + λ · bits of the latents per pixel.

The latents start at zero except the disparity grid, which starts from a plane sweep of the views
(``disparity``). The first part of training adds uniform noise to the latents in place of rounding;
the last ``ste_fraction`` of the steps rounds them, with a straight-through gradient, so the
networks adapt to the integers the bitstream carries. A neighbouring rate point's model can be the
start (``init``): then ``warm_steps`` steps. Every step draws random rays of all (training) views
through the engine's trainer, which also keeps the resume state.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from lfcomp.codecs.latent.model import LatentCodecModel, LatentGeometry
from lfcomp.config import Config
from lfcomp.engine.device import seed_everything
from lfcomp.engine.rays import RayBatches
from lfcomp.engine.resume import Resume
from lfcomp.engine.trainer import Optimisation, Trainer
from lfcomp.engine.validation import eval_positions
from lfcomp.evaluation.floors import floor_summary, trivial_floors, warn_below_floors
from lfcomp.evaluation.metrics import per_view_psnr
from lfcomp.io.calibration import plane_sweep, smooth_disparity
from lfcomp.models.scene import to_uint8

__all__ = ["fit_latent", "geometry_for", "render_views", "stage_report"]

log = logging.getLogger("lfcomp")


def geometry_for(grid: tuple[int, int], size: tuple[int, int], cfg: Config) -> LatentGeometry:
    c = cfg.latent
    return LatentGeometry(grid=(int(grid[0]), int(grid[1])), size=(int(size[0]), int(size[1])), margin=c.margin,
                          levels=c.levels, disparity_stride=c.disparity_stride, disparity_step=c.disparity_step,
                          hidden=tuple(c.hidden), gain=c.gain, warp=c.warp)


def initial_disparity(model: LatentCodecModel, views: np.ndarray, search: tuple[float, float]) -> tuple[float, float]:
    """Set the disparity latent from a plane sweep of ``views``; returns the estimate's range."""
    g = model.geometry
    estimate = smooth_disparity(plane_sweep(torch.from_numpy(views).float() / 255.0, search))
    H, W = g.size
    rows, cols = g.disparity_shape()
    gy = (torch.arange(rows, dtype=torch.float32) * g.disparity_stride - g.margin).clamp(0, H - 1) / max(H - 1, 1)
    gx = (torch.arange(cols, dtype=torch.float32) * g.disparity_stride - g.margin).clamp(0, W - 1) / max(W - 1, 1)
    grid = torch.stack(torch.meshgrid(gx * 2 - 1, gy * 2 - 1, indexing="xy"), dim=-1)[None]
    sampled = F.grid_sample(estimate[None, None], grid, align_corners=True)[0, 0]
    with torch.no_grad():
        model.field.disparity.copy_((sampled / g.disparity_step).view_as(model.field.disparity))
    return float(estimate.min()), float(estimate.max())


@torch.no_grad()
def render_views(model: LatentCodecModel, positions: list[tuple[float, float]], progress: bool = False) -> np.ndarray:
    """8-bit views (K, H, W, 3) at (u, v) grid positions, latents rounded (what the decoder shows)."""
    model.eval()
    out = [to_uint8(model.field.render_view(u, v, "round").cpu().numpy())
           for u, v in tqdm(positions, desc="render", unit="view", disable=not progress, leave=False)]
    return np.stack(out)


def fit_latent(views: np.ndarray, lmbda: float, cfg: Config, device: torch.device, init: dict[str, Any] | None = None,
               resume: Resume | None = None) -> tuple[LatentCodecModel, dict[str, Any]]:
    """Train the codec's model on ``views`` (U, V, H, W, 3) uint8 at rate point ``lmbda``."""
    c, train = cfg.latent, cfg.train
    seed_everything(train.seed)
    U, V, H, W, _ = views.shape
    model = LatentCodecModel(geometry_for((U, V), (H, W), cfg), c.arm_hidden)
    if init is not None:
        model.load_state_dict(init["state_dict"])
        steps, origin = c.warm_steps, f"warm start from λ={init['lmbda']:g}"
    elif c.warp:
        low, high = initial_disparity(model, views, c.disparity_search)
        steps, origin = c.steps, f"disparity from a plane sweep, {low:.2f}..{high:.2f} px/view"
    else:
        steps, origin = c.steps, "no disparity warp"
    model.to(device)
    pixels = U * V * H * W
    log.info("latent codec λ=%g: %d latents, %d synthesis MAC/pixel, %d steps (%s)", lmbda,
             model.geometry.latent_count(), model.field.macs_per_pixel(), steps, origin)
    rays = RayBatches.from_views(views, device, train.seed + 5, train.holdout_views)
    mode = {"quantization": "noise"}
    ste_from = int(math.ceil(steps * (1 - c.ste_fraction)))
    latest: dict[str, float] = {}

    def render(s, t, x, y, perturb=False, generator=None):
        return model(s, t, x, y, quantization=mode["quantization"])

    def rate() -> torch.Tensor:
        bits = model.latent_bits(mode["quantization"])
        latest["bpp"] = float(bits.detach()) / pixels
        return lmbda * bits / pixels

    def switch_to_rounding(step: int) -> None:
        if step + 1 >= ste_from and mode["quantization"] == "noise":
            mode["quantization"] = "ste"
            log.info("step %d: latents rounded from here on (straight-through)", step + 1)

    groups = [{"params": [*model.field.latents, model.field.disparity], "lr": c.lr},
              {"params": [*model.field.synthesis.parameters(), *model.arm.parameters()], "lr": c.net_lr}]
    optimisation = Optimisation(steps, c.lr, c.lr_final_ratio, c.batch_rays, train.log_every)
    if ste_from <= 1:
        mode["quantization"] = "ste"
    if resume is not None:  # noise or rounding is part of the state: a run resumed after the switch rounds
        resume.extra_state = lambda: dict(mode)
        resume.load_extra_state = mode.update
    history = Trainer(model, rays, groups, optimisation, f"latent λ={lmbda:g}", resume).run(
        extra_loss=rate, after_step=switch_to_rounding, render=render, status=lambda: {"bpp": latest.get("bpp", 0.0)})
    report = stage_report(model, views, cfg, lmbda, steps)
    log.info("latent λ=%g: PSNR %.2f dB on %d views, latents ≈ %.5f bpp", lmbda, report["psnr_rgb"],
             len(report["views"]), report["latent_bpp"])
    return model, {"history": history, "report": report}


def stage_report(model: LatentCodecModel, views: np.ndarray, cfg: Config, lmbda: float, steps: int) -> dict[str, Any]:
    """The checkpoint's report of a trained model: ``evaluate`` and what the model is."""
    report = evaluate(model, views, cfg)
    report.update(lmbda=lmbda, steps=steps, latents=model.geometry.latent_count(),
                  macs_per_pixel=model.field.macs_per_pixel(), geometry=model.geometry.to_dict())
    return report


@torch.no_grad()
def evaluate(model: LatentCodecModel, views: np.ndarray, cfg: Config) -> dict[str, Any]:
    """PSNR (rounded latents) on the preset's evaluation views, and the latents' estimated rate."""
    holdout = [tuple(map(int, p)) for p in cfg.train.holdout_views]
    positions = [p for p in eval_positions(views.shape[:2], cfg.train.eval_views) if p not in holdout]
    rendered = render_views(model, [(float(u), float(v)) for u, v in positions])
    rgb, y = per_view_psnr(np.stack([views[u, v] for u, v in positions]), rendered)
    U, V, H, W, _ = views.shape
    bpp = float(model.latent_bits("round")) / (U * V * H * W)
    floors = floor_summary(trivial_floors(views), positions)
    return {"psnr_rgb": float(rgb.mean()), "psnr_y": float(y.mean()), "views": [list(p) for p in positions],
            "psnr_rgb_views": rgb.round(4).tolist(), "latent_bpp": bpp, "floors": floors,
            "below_floors": warn_below_floors("latent model", float(rgb.mean()), floors)}
