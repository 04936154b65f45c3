"""Presets: every hyper-parameter of every stage, in one nested mapping per preset.

``paper`` is the paper's setting (§3.1-3.2), ``quick`` is sized for 2 CPU cores (NeRF-org plus one
rate point of a 9x9 light field at 128x128 in about 5 minutes), ``smoke`` runs the whole chain in
seconds for tests. Each preset is written for the paper's model kind (``nerf``); its ``variants``
block holds what changes for the neural light field (``model.kind: nelf``): a larger MLP, bigger
ray batches and more steps in the same wall time, ranks scaled to its width.

Any value can be overridden from a YAML file or ``--set section.key=value``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from lfcomp.errors import LfcompError

Config = dict[str, Any]

# The model kinds (lfcomp/scene.py builds a field for each): the paper's NeRF first.
MODEL_KINDS = ("nerf", "nelf")

PAPER: Config = {
    "model": {
        "kind": "nerf",
        "depth": 8,  # hidden layers of the one MLP
        "width": 256,
        "skips": [4],  # the input is concatenated again before this hidden layer
        "pos_freqs": 10,
        "dir_freqs": 4,
        "samples": 128,  # stratified samples per ray, linear in inverse depth
    },
    "camera": {
        # Used only where the light field carries no disparity range (e.g. no parameters.cfg).
        "disparity_range": [-2.0, 2.0],  # pixels per view step, at the ingested resolution
        "near": 2.0,
        "far": 6.0,
        "trainable": True,
        "lr_scale": 0.1,  # camera learning rate = train.lr * lr_scale
        "freeze_steps": 1000,  # warm-up with the camera frozen (guards against baseline collapse)
    },
    "train": {"steps": 300_000, "batch_rays": 1024, "lr": 5e-4, "lr_final_ratio": 0.1, "seed": 0,
              "log_every": 1000, "eval_views": "all", "chunk_rays": 4096, "precision": "fp32",
              "holdout_views": [],  # [[u, v], ...] never trained on, reported apart (view synthesis)
              "resume_every": 5000},  # steps between resume states of train, lowrank and distill
    "lowrank": {"steps": 300_000, "rho": 10.0, "z_update_every": 100, "lr": 5e-4, "lr_final_ratio": 0.1},
    "distill": {"steps": 200_000, "lr": 5e-4, "lr_final_ratio": 0.1},
    "quantize": {"steps_per_layer": 30_000, "codebook_steps": 30_000, "kmeans_iters": 20, "lr": 5e-4,
                 "lr_final_ratio": 0.1},
    "rate_points": [[150, 256], [90, 256], [70, 256], [40, 256], [40, 64], [40, 32]],
    # Cluster requests (Snakemake resources): the GPU stages get gpus, stage_minutes (train_minutes
    # for training) and mem_mb; the CPU-only stages (ingest, decompose, encode, evaluate) cpu_minutes
    # and cpu_mem_mb, so that they do not queue as multi-day, 16 GB jobs.
    "runtime": {"train_minutes": 2880, "stage_minutes": 1440, "mem_mb": 16000, "gpus": 1,
                "cpu_minutes": 120, "cpu_mem_mb": 4000},
    "variants": {"nelf": {
        "model": {"kind": "nelf", "depth": 8, "width": 256, "skips": [4], "pos_freqs": 10},
        "train": {"batch_rays": 4096, "chunk_rays": 65536},
    }},
}


def _derive(base: Config, changes: Config) -> Config:
    out = copy.deepcopy(base)
    for section, values in changes.items():
        if isinstance(values, dict):
            out[section].update(values)
        else:
            out[section] = values
    return out


QUICK: Config = _derive(PAPER, {
    "model": {"depth": 4, "width": 64, "skips": [], "samples": 32},
    "camera": {"freeze_steps": 300},
    "train": {"steps": 2000, "batch_rays": 1024, "lr": 2e-3, "log_every": 100, "eval_views": 9, "resume_every": 500},
    "lowrank": {"steps": 600, "z_update_every": 50, "lr": 1e-3},
    "distill": {"steps": 400, "lr": 1e-3},
    "quantize": {"steps_per_layer": 40, "codebook_steps": 150, "lr": 5e-4},
    # The paper's ranks scaled by width (150, 90, 70, 40 of 256 -> of 64).
    "rate_points": [[38, 256], [22, 256], [18, 256], [10, 256], [10, 64], [10, 32]],
    "runtime": {"train_minutes": 30, "stage_minutes": 30, "mem_mb": 4000, "gpus": 1, "cpu_minutes": 15,
                "cpu_mem_mb": 2000},
    "variants": {"nelf": {
        "model": {"kind": "nelf", "depth": 4, "width": 128, "skips": [], "pos_freqs": 10},
        "train": {"steps": 12000, "batch_rays": 4096, "lr": 2e-3, "log_every": 500, "eval_views": "all",
                  "chunk_rays": 65536},
        "lowrank": {"steps": 3000, "z_update_every": 100, "lr": 1e-3},
        "distill": {"steps": 2500, "lr": 1e-3},
        "quantize": {"steps_per_layer": 200, "codebook_steps": 400, "lr": 5e-4},
        "rate_points": [[75, 256], [45, 256], [35, 256], [20, 256], [20, 64], [20, 32]],
    }},
})

SMOKE: Config = _derive(PAPER, {
    "model": {"depth": 4, "width": 32, "skips": [], "pos_freqs": 6, "dir_freqs": 2, "samples": 16},
    "camera": {"freeze_steps": 10},
    "train": {"steps": 60, "batch_rays": 512, "lr": 5e-3, "log_every": 10, "eval_views": 5, "resume_every": 20},
    "lowrank": {"steps": 40, "z_update_every": 10, "lr": 2e-3},
    "distill": {"steps": 30, "lr": 2e-3},
    "quantize": {"steps_per_layer": 5, "codebook_steps": 10, "lr": 1e-3},
    "rate_points": [[8, 16], [4, 16], [4, 8]],
    "runtime": {"train_minutes": 10, "stage_minutes": 10, "mem_mb": 2000, "gpus": 1, "cpu_minutes": 10,
                "cpu_mem_mb": 1000},
    "variants": {"nelf": {
        "model": {"kind": "nelf", "depth": 4, "width": 32, "skips": [], "pos_freqs": 6},
        "train": {"steps": 200, "batch_rays": 1024, "chunk_rays": 65536},
        "lowrank": {"steps": 100},
        "distill": {"steps": 60},
    }},
})

PRESETS: dict[str, Config] = {"paper": PAPER, "quick": QUICK, "smoke": SMOKE}


def load_preset(name: str) -> Config:
    """Return a deep copy of the named preset."""
    if name not in PRESETS:
        raise LfcompError("--preset", f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    cfg = copy.deepcopy(PRESETS[name])
    cfg["preset"] = name
    return cfg


def apply_overrides(cfg: Config, overrides: Config, where: str = "--set") -> Config:
    """Merge ``{section: {key: value}}`` into ``cfg``; unknown sections or keys are errors."""
    out = copy.deepcopy(cfg)
    for section, values in overrides.items():
        if section not in out or section == "variants":
            raise LfcompError(where, f"unknown config section {section!r}")
        if isinstance(out[section], dict):
            if not isinstance(values, dict):
                raise LfcompError(where, f"section {section!r} must be a mapping")
            for key, value in values.items():
                if key not in out[section]:
                    known = ", ".join(sorted(out[section]))
                    raise LfcompError(where, f"unknown key {section}.{key} (known: {known})")
                out[section][key] = value
        else:
            out[section] = values
    return out


def with_kind(cfg: Config, kind: str, where: str = "model.kind") -> Config:
    """The preset as written for ``kind``: its variant block applied on top, if any."""
    variants = cfg.get("variants", {})
    if kind == cfg["model"]["kind"]:
        return cfg
    if kind not in variants:
        raise LfcompError(where, f"unknown model kind {kind!r} (choose from {cfg['model']['kind']}, "
                                 f"{', '.join(variants)})")
    out = copy.deepcopy(cfg)
    for section, values in variants[kind].items():
        if isinstance(values, dict):
            out[section].update(values)
        else:
            out[section] = values
    return out


def parse_set_option(text: str) -> Config:
    """Parse ``section.key=value`` (value as YAML) into ``{section: {key: value}}``."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise LfcompError("--set", f"expected section.key=value, got {text!r}")
    dotted, raw = text.split("=", 1)
    section, key = dotted.split(".", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise LfcompError("--set", f"cannot parse value of {dotted}: {exc}") from None
    return {section: {key: value}}


def resolve_config(preset: str = "quick", config_file: str | Path | None = None,
                   sets: list[str] | None = None, kind: str | None = None) -> Config:
    """Preset (for the model kind), then the YAML file's overrides, then each ``--set`` in order.

    The kind is ``kind`` when given (later stages take it from their input checkpoint), else the
    last ``model.kind`` among the overrides, else the preset's.
    """
    overrides: list[tuple[Config, str]] = []
    if config_file is not None:
        path = Path(config_file)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise LfcompError(path, f"cannot read config file: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise LfcompError(path, f"not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise LfcompError(path, "config file must be a mapping of sections")
        overrides.append((data, str(path)))
    overrides += [(parse_set_option(text), "--set") for text in sets or []]
    cfg = load_preset(preset)
    if kind is None:
        kinds = [o["model"]["kind"] for o, _ in overrides if isinstance(o.get("model"), dict) and "kind" in o["model"]]
        kind = kinds[-1] if kinds else cfg["model"]["kind"]
    cfg = with_kind(cfg, kind)
    for data, where in overrides:
        cfg = apply_overrides(cfg, data, where)
    cfg["model"]["kind"] = kind
    cfg.pop("variants", None)
    return cfg


def preset_for(name: str, kind: str = "nerf") -> Config:
    """A preset as it applies to one model kind (e.g. its rate points), without overrides."""
    return resolve_config(name, kind=kind)
