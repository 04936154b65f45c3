"""Stage 5, DLR-NeRF (paper §2.4): a slimmer network initialised from the TT cores, fine-tuned.

Every decomposed layer becomes two linear layers, ``n1 → r`` with weight Q1ᵀ and ``r → n2`` with
weight Q2ᵀ and the original bias; the network then trains again so that the scene information
moves into the slim architecture.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch

from lfcomp.codecs.qdlr.decompose import load_camera_state
from lfcomp.config import DistillConfig, TrainConfig
from lfcomp.engine.device import seed_everything
from lfcomp.engine.rays import RayBatches
from lfcomp.engine.resume import Resume
from lfcomp.engine.trainer import Optimisation, Trainer
from lfcomp.engine.validation import evaluate
from lfcomp.models.mlp import FactorizedLinear
from lfcomp.models.scene import SceneModel, count_field_params

log = logging.getLogger("lfcomp")


def model_from_cores(layers: dict[str, dict[str, np.ndarray]], attrs: dict[str, Any]) -> SceneModel:
    """Build the DLR-NeRF whose factorized slots hold exactly the cores."""
    spec = copy.deepcopy(attrs["spec"])
    spec["factor_ranks"] = {name: int(arrays["Q1"].shape[2]) for name, arrays in layers.items() if "Q1" in arrays}
    camera = attrs["camera"]
    model = SceneModel(spec, camera, camera_trainable=False)
    load_camera_state(model, attrs["camera_state"])
    with torch.no_grad():
        for name, slot in model.field.named_slots():
            arrays = layers[name]
            if isinstance(slot, FactorizedLinear):
                slot.first.weight.copy_(torch.from_numpy(arrays["Q1"][0].T.copy()))
                slot.second.weight.copy_(torch.from_numpy(arrays["Q2"][..., 0].T.copy()))
                slot.second.bias.copy_(torch.from_numpy(arrays["bias"]))
            else:
                slot.weight.copy_(torch.from_numpy(arrays["weight"]))
                slot.bias.copy_(torch.from_numpy(arrays["bias"]))
    return model


def distill(model: SceneModel, views: np.ndarray, cfg: DistillConfig, train_cfg: TrainConfig,
            resume: Resume | None = None) -> tuple[SceneModel, dict[str, Any]]:
    """Fine-tune the distilled network; returns it and the stage extras."""
    seed_everything(train_cfg.seed)
    device = model.camera.log_focal.device
    log.info("DLR-NeRF initialised from cores (renders as the low-rank network: the lowrank stage's PSNR), "
             "%d parameters", count_field_params(model))
    rays = RayBatches.from_views(views, device, train_cfg.seed + 2, train_cfg.holdout_views)
    optimisation = Optimisation(cfg.steps, cfg.lr, cfg.lr_final_ratio, train_cfg.batch_rays, train_cfg.log_every,
                                cfg.precision)
    history = Trainer(model, rays, list(model.field.parameters()), optimisation, "distill", resume).run()
    report = evaluate(model, views, train_cfg)
    report["params"] = count_field_params(model)
    log.info("DLR-NeRF fine-tuned: PSNR %.2f dB (RGB), %d parameters", report["psnr_rgb"], report["params"])
    return model, {"history": history, "report": report}
