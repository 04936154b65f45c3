"""NeRF-org training: camera initialisation, warm-up, reproducibility."""

from __future__ import annotations

import torch

from conftest import make_synthetic_lightfield
from lfcomp.codecs.qdlr.train import initial_camera_for, train_nerf
from lfcomp.config import Config, load_preset, merge
from lfcomp.io.lightfield import LightField


def tiny_cfg(steps: int = 6, freeze: int = 3) -> Config:
    return merge(load_preset("smoke"), {"model": {"depth": 2, "width": 16, "samples": 6},
                                        "train": {"steps": steps, "batch_rays": 64, "eval_views": 1, "log_every": 3},
                                        "camera": {"freeze_steps": freeze}})


def lightfield(camera: dict | None = None) -> LightField:
    attrs = {"camera": camera} if camera else {}
    return LightField(make_synthetic_lightfield(3, 3, 8, 8), attrs)


def test_camera_initialised_from_metadata_or_config():
    cfg = tiny_cfg()
    start = initial_camera_for(lightfield({"focal_px": 50.0, "disparity_range": [-1.6, 1.5]}), cfg.camera)
    assert start.values["focal"] == 50.0 and "metadata" in start.origin and start.vertical_step == 1.0
    start = initial_camera_for(lightfield(), cfg.camera)
    assert start.values["focal"] == 1.2 * 8 and "camera.disparity_range" in start.origin


def test_training_is_reproducible_with_a_seed_and_learns():
    lf = lightfield()
    a, extras = train_nerf(lf, tiny_cfg(), torch.device("cpu"))
    b, _ = train_nerf(lf, tiny_cfg(), torch.device("cpu"))
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    assert [h["step"] for h in extras["history"]] == [3, 6]
    report = extras["report"]
    assert report["params"] == sum(p.numel() for p in a.field.parameters())
    assert len(report["disparity_range_scene"]) == 2


def test_camera_stays_frozen_during_warm_up():
    lf = lightfield()
    model, extras = train_nerf(lf, tiny_cfg(steps=4, freeze=10), torch.device("cpu"))
    learned, init = extras["report"]["camera"], extras["report"]["camera_init"]
    assert all(abs(learned[k] - v) <= 1e-5 * max(1.0, abs(v)) for k, v in init.items())  # float32 rounding only
    model, extras = train_nerf(lf, tiny_cfg(steps=6, freeze=2), torch.device("cpu"))
    assert extras["report"]["camera"]["baseline"] != extras["report"]["camera_init"]["baseline"]
