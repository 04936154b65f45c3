"""Stage 3, LR-NeRF (paper §2.3, eqs. 4-13): low-rank training of every weight matrix by ADMM.

    W-step  gradient descent on  ‖c' − c_gt‖² + Σ_i ρ/2 ‖W_i − Z_i + U_i‖²_F       (eq. 10)
    Z-step  Z_i = Π_r(W_i + U_i)   (projection onto rank ≤ r)                       (eq. 13)
    U-step  U_i = U_i + W_i − Z_i  (scaled dual update)                             (eq. 12)

Π_r is the truncated TT decomposition of the paper; for a matrix, TT-SVD with ranks [1, r, 1] is
exactly the truncated SVD (Eckart-Young), which is what ``admm_rank_projection`` computes. Only
matrices with r < min(n1, n2) are constrained (any other matrix already has rank ≤ r). The
stage's output weights are the final projections Π_r(W_i), so its PSNR is the LR-NeRF of Table 2.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from lfcomp.config import LowRankConfig, TrainConfig
from lfcomp.engine.device import seed_everything
from lfcomp.engine.rays import RayBatches
from lfcomp.engine.resume import Resume
from lfcomp.engine.trainer import Optimisation, Trainer
from lfcomp.engine.validation import evaluate
from lfcomp.errors import LfcompError
from lfcomp.models.mlp import slot_weight_params
from lfcomp.models.scene import SceneModel, count_field_params

log = logging.getLogger("lfcomp")


def admm_rank_projection(matrix: torch.Tensor, rank: int) -> torch.Tensor:
    """Best rank-``rank`` approximation in Frobenius norm (truncated SVD)."""
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vh[:rank]


def check_rank(rank: int, model: SceneModel) -> None:
    width = model.spec["field"]["width"]
    if not 0 < rank < width:
        raise LfcompError("--rank", f"rank must be in 1..{width - 1} (the layer width is {width}), got {rank}")


def constrained_weights(model: SceneModel, rank: int) -> dict[str, torch.nn.Parameter]:
    """The weight matrices that a rank-r constraint actually restricts, by slot name."""
    out = {}
    for name, slot in model.field.named_slots():
        (weight,) = slot_weight_params(slot)
        if rank < min(weight.shape):
            out[name] = weight
    return out


def stored_params(model: SceneModel, rank: int) -> int:
    """Parameters needed to store the rank-r weights as factors wherever that is smaller."""
    total = 0
    for _, slot in model.field.named_slots():
        (weight,) = slot_weight_params(slot)
        n2, n1 = weight.shape
        total += min(n1 * n2, rank * (n1 + n2)) + n2
    return total


def relative_residuals(weights: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, float]:
    """‖W − Z‖ / ‖W‖ per layer."""
    return {name: float((w.detach() - targets[name]).norm() / w.detach().norm().clamp_min(1e-12))
            for name, w in weights.items()}


def admm_lowrank(model: SceneModel, views: np.ndarray, rank: int, cfg: LowRankConfig,
                 train_cfg: TrainConfig, resume: Resume | None = None) -> tuple[SceneModel, dict[str, Any]]:
    """Run ADMM from a trained model; returns the model with rank-r weights and the stage extras.

    ``cfg`` is the ``lowrank`` config section; ``train_cfg`` supplies batch size, seed and evaluation.
    """
    check_rank(rank, model)
    seed_everything(train_cfg.seed)
    device = model.camera.log_focal.device
    rays = RayBatches.from_views(views, device, train_cfg.seed + 1, train_cfg.holdout_views)
    weights = constrained_weights(model, rank)
    rho = float(cfg.rho)
    with torch.no_grad():
        Z = {n: admm_rank_projection(w, rank) for n, w in weights.items()}
        U = {n: torch.zeros_like(w) for n, w in weights.items()}
    residual_log: list[dict[str, Any]] = []

    def augmented_term() -> torch.Tensor:
        return sum(0.5 * rho * (w - Z[n] + U[n]).pow(2).sum() for n, w in weights.items())

    def admm_update(step: int) -> None:
        if step % cfg.z_update_every and step != cfg.steps:
            return
        with torch.no_grad():
            for n, w in weights.items():
                Z[n] = admm_rank_projection(w + U[n], rank)
                U[n] += w - Z[n]
        residuals = relative_residuals(weights, Z)
        residual_log.append({"step": step, **residuals})
        log.info("ADMM step %d: ‖W−Z‖/‖W‖ %s", step, " ".join(f"{n}={r:.3g}" for n, r in residuals.items()))

    if resume is not None:  # Z, U and the residual log are part of the ADMM state
        resume.extra_state = lambda: {"Z": Z, "U": U, "residuals": residual_log}

        def load_admm_state(state: dict[str, Any]) -> None:
            Z.update({n: z.to(device) for n, z in state["Z"].items()})
            U.update({n: u.to(device) for n, u in state["U"].items()})
            residual_log[:] = state["residuals"]

        resume.load_extra_state = load_admm_state
    optimisation = Optimisation(cfg.steps, cfg.lr, cfg.lr_final_ratio, train_cfg.batch_rays, train_cfg.log_every,
                                cfg.precision, loss_reduction="sum")
    history = Trainer(model, rays, list(model.field.parameters()), optimisation, f"lowrank r={rank}", resume).run(
        extra_loss=augmented_term, after_step=admm_update)
    with torch.no_grad():
        for w in weights.values():
            w.copy_(admm_rank_projection(w, rank))
    report = evaluate(model, views, train_cfg)
    report["params"] = count_field_params(model)
    report["rank"] = rank
    report["stored_params"] = stored_params(model, rank)
    report["constrained_layers"] = sorted(weights)
    log.info("LR-NeRF r=%d: PSNR %.2f dB (RGB) after projecting %d layers to rank %d",
             rank, report["psnr_rgb"], len(weights), rank)
    return model, {"history": history, "report": report, "admm_residuals": residual_log, "rank": rank}
