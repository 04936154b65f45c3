"""Typed configuration: presets as instances, one merge function, one-line errors naming the key."""

from __future__ import annotations

import dataclasses

import pytest

from lfcomp.config import PRESETS, load_preset, merge, parse_set_option, resolve_config
from lfcomp.errors import LfcompError


def test_presets_are_frozen_instances_per_kind():
    cfg = load_preset("quick")
    assert cfg.preset == "quick" and cfg.model.kind == "nerf" and cfg.model.width == 64
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.steps = 3  # type: ignore[misc]
    nelf = load_preset("quick", "nelf")
    assert nelf.model.width == 128 and nelf.train.eval_views == "all" and nelf.rate_points[0] == (75, 256)
    assert {name: list(kinds) for name, kinds in PRESETS.items()} == {p: ["nerf", "nelf"] for p in PRESETS}
    assert load_preset("paper").lowrank.rho == 10.0 and load_preset("paper").model.skips == (4,)


def test_set_options_and_yaml_file_merge_in_order(tmp_path):
    path = tmp_path / "over.yaml"
    path.write_text("train: {steps: 7, lr: 1.0e-3}\nlowrank: {rho: 5}\nrate_points: [[4, 8]]\n")
    cfg = resolve_config("smoke", path, ["train.steps=9", "train.holdout_views=[[1, 2]]", "camera.lr_scale=5e-2"])
    assert cfg.train.steps == 9 and cfg.train.lr == 1e-3 and cfg.lowrank.rho == 5.0
    assert isinstance(cfg.lowrank.rho, float) and cfg.rate_points == ((4, 8),)
    assert cfg.train.holdout_views == ((1, 2),) and cfg.camera.lr_scale == 0.05  # YAML 1.1 reads 5e-2 as text
    assert resolve_config("smoke", sets=["model.kind=nelf"]).model.width == 32  # the kind's preset
    assert resolve_config("smoke", sets=["train.steps=3"], kind="nelf").train.steps == 3


@pytest.mark.parametrize("overrides, message", [
    ({"trian": {"steps": 3}}, "unknown config section 'trian'"),
    ({"train": {"stepz": 3}}, "unknown key train.stepz (known: batch_rays"),
    ({"train": {"steps": "two"}}, "train.steps: expected an integer, got 'two'"),
    ({"train": {"steps": 2.5}}, "train.steps: expected an integer"),
    ({"camera": {"trainable": "yes"}}, "camera.trainable: expected true or false"),
    ({"camera": {"disparity_range": [1.0]}}, "camera.disparity_range: expected a list of 2"),
    ({"train": 5}, "section 'train' must be a mapping"),
    ({"preset": "paper"}, "unknown config section 'preset'"),
])
def test_bad_overrides_are_one_line_errors_naming_the_key(overrides, message):
    with pytest.raises(LfcompError) as info:
        merge(load_preset("smoke"), overrides, "my.yaml")
    assert str(info.value).startswith("my.yaml: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_set_option_syntax_and_unknown_preset_or_kind(tmp_path):
    assert parse_set_option("train.eval_views=all") == {"train": {"eval_views": "all"}}
    with pytest.raises(LfcompError, match="expected section.key=value"):
        parse_set_option("steps=3")
    with pytest.raises(LfcompError, match="unknown preset 'fast'"):
        load_preset("fast")
    with pytest.raises(LfcompError, match="unknown model kind 'nerd'"):
        resolve_config("smoke", sets=["model.kind=nerd"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just a list\n")
    with pytest.raises(LfcompError, match="bad.yaml: config file must be a mapping"):
        resolve_config("smoke", bad)


def test_to_dict_is_json_native_for_checkpoints_and_resume_keys():
    import json

    data = load_preset("quick").to_dict()
    assert data["model"]["skips"] == [] and data["rate_points"][0] == [38, 256]
    json.dumps(data)  # no tuples or dataclasses left
