"""Training precision: fp32, bf16 autocast, or auto (bf16 where the device computes it natively)."""

from __future__ import annotations

import logging

import pytest
import torch

from lfcomp.config import load_preset, merge
from lfcomp.engine.device import bf16_supported, resolve_precision
from lfcomp.errors import LfcompError


def test_auto_is_bf16_only_where_native() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if bf16_supported(cpu) else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"


def test_unknown_precision_is_a_one_line_error() -> None:
    with pytest.raises(LfcompError, match=r"train.precision: unknown precision 'fp16' \(choose from fp32, bf16, auto\)"):
        resolve_precision("fp16", torch.device("cpu"))


@pytest.mark.parametrize("section", ["train", "lowrank", "distill", "quantize"])
def test_each_training_stage_has_its_own_precision_checked_by_name(section: str) -> None:
    cfg = merge(load_preset("smoke"), {section: {"precision": "bf16"}})
    assert getattr(cfg, section).precision == "bf16"
    with pytest.raises(LfcompError, match=rf"^--set: {section}.precision: expected one of fp32, bf16, auto, got 'fp16'$"):
        merge(load_preset("smoke"), {section: {"precision": "fp16"}})


@pytest.mark.parametrize("stage", ["lowrank", "distill", "quantize"])
def test_a_compression_stage_trains_in_its_own_precision(stage: str, caplog: pytest.LogCaptureFixture) -> None:
    """The stage's section decides the autocast of its Trainer (logged with the step time); the
    other stages' precision does not leak into it."""
    from test_compression import smoke_cfg, tiny_model

    from conftest import make_synthetic_lightfield
    from lfcomp.codecs.qdlr.distill import distill
    from lfcomp.codecs.qdlr.lowrank import admm_lowrank
    from lfcomp.codecs.qdlr.quantize import quantize_model

    views = make_synthetic_lightfield(3, 3, 8, 8)
    base = smoke_cfg()
    cfg = merge(base, {"train": {"precision": "fp32"}, "lowrank": {"steps": 2, "precision": "fp32"},
                       "distill": {"steps": 2, "precision": "fp32"},
                       "quantize": {"steps_per_layer": 1, "codebook_steps": 1, "precision": "fp32"},
                       stage: {"precision": "bf16"}})
    run = {"lowrank": lambda m: admm_lowrank(m, views, 3, cfg.lowrank, cfg.train),
           "distill": lambda m: distill(m, views, cfg.distill, cfg.train),
           "quantize": lambda m: quantize_model(m, views, 8, cfg.quantize, cfg.train)}[stage]
    with caplog.at_level(logging.INFO, logger="lfcomp"):
        run(tiny_model("nerf"))
    trained = [r.getMessage() for r in caplog.records if " steps in " in r.getMessage()]
    assert trained and all(message.endswith(", bf16)") for message in trained), trained
