"""Typed configuration: one frozen dataclass per section, and the one function that merges overrides.

A ``Config`` holds every parameter of every stage. Presets (``lfcomp.config.presets``) are
``Config`` instances; a YAML file of ``{section: {key: value}}`` and each ``--set section.key=value``
are merged over one by ``merge``, which checks every section and key by name and every value by
the field's type, so a typo or a wrong type is a one-line error naming it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lfcomp.errors import LfcompError

__all__ = ["CameraConfig", "Config", "DistillConfig", "LatentConfig", "LowRankConfig", "ModelConfig", "Precision",
           "QuantizeConfig", "RenderPrecision", "RuntimeConfig", "TrainConfig", "merge"]

# The arithmetic a training stage runs in: fp32, bf16 autocast, or auto (bf16 where the device
# computes it natively, fp32 elsewhere: ``lfcomp.engine.device.resolve_precision``). Rendering for
# evaluation and decoding does not follow it: it is the model's ``render_precision``.
Precision = Literal["fp32", "bf16", "auto"]
# The arithmetic a scene model renders in (evaluation, decoding, the clip): part of its spec, so of
# the bitstream format, and never a property of the machine that decodes it (no ``auto``).
RenderPrecision = Literal["fp32", "bf16"]


@dataclass(frozen=True)
class ModelConfig:
    """The scene model: its kind (``lfcomp.models.registry``) and sizes; ``dir_freqs`` and
    ``samples`` apply to kinds that volume-render (nerf)."""

    kind: str
    depth: int  # hidden layers of the one MLP
    width: int
    skips: tuple[int, ...]  # the encoded input is concatenated again before these hidden layers
    pos_freqs: int
    dir_freqs: int
    samples: int  # stratified samples per ray, linear in inverse depth
    render_precision: RenderPrecision = "fp32"  # bf16: autocast, output layer in fp32 (``models.mlp``)


@dataclass(frozen=True)
class CameraConfig:
    """The light-field camera's initialisation and training (paper §2.2)."""

    disparity_range: tuple[float, float]  # px per view step; used where the light field carries none
    near: float
    far: float
    trainable: bool
    lr_scale: float  # camera learning rate = train.lr × lr_scale
    freeze_steps: int  # warm-up with the camera frozen (guards against baseline collapse)
    baseline_band: float  # a camera started from disparities estimated from the views keeps Δ within ×/÷ this


@dataclass(frozen=True)
class TrainConfig:
    """Training of the original model, and what every later training stage shares."""

    steps: int
    batch_rays: int
    lr: float
    lr_final_ratio: float  # exponential decay to lr × lr_final_ratio
    seed: int
    log_every: int
    eval_views: str | int  # "all" or a number of views spread over the grid
    chunk_rays: int
    precision: Precision  # the NeRF-org/NeLF-org training's
    holdout_views: tuple[tuple[int, int], ...]  # never trained on, reported apart (view synthesis)
    resume_every: int  # steps between resume states of train, lowrank and distill


@dataclass(frozen=True)
class LowRankConfig:
    """ADMM low-rank training (paper §2.3)."""

    steps: int
    rho: float
    z_update_every: int
    lr: float
    lr_final_ratio: float
    precision: Precision


@dataclass(frozen=True)
class DistillConfig:
    """Fine-tuning of the network initialised from the TT cores (paper §2.4)."""

    steps: int
    lr: float
    lr_final_ratio: float
    precision: Precision


@dataclass(frozen=True)
class QuantizeConfig:
    """Shared-codebook quantisation-aware training (paper §2.5)."""

    steps_per_layer: int
    codebook_steps: int
    kmeans_iters: int
    lr: float
    lr_final_ratio: float
    precision: Precision


@dataclass(frozen=True)
class LatentConfig:
    """The rate–distortion-trained latent codec: its rate points (λ), representation and training.

    Loss = MSE (RGB in [0, 1]) + λ · rate (bits of the latents per pixel of the light field)."""

    lambdas: tuple[float, ...]  # explicit rate points (λ), run when target_bpp is empty
    target_bpp: tuple[float, ...]  # the rate points as target bitrates (λ searched per light field)
    target_trials: int  # trainings at most per target (the first at the predicted λ)
    levels: int  # latent levels: full resolution, 1/2, 1/4, ...
    margin: int  # latent pixels beyond the centre view's border (the corner views see there)
    disparity_stride: int  # pixels per disparity latent
    disparity_step: float  # px per view step per integer unit of the disparity latent
    disparity_search: tuple[float, float]  # plane-sweep range (px per view step) of the initial disparity
    hidden: tuple[int, ...]  # synthesis layer widths
    gain: float  # synthesis feature of one integer latent step
    arm_hidden: int  # hidden width of the entropy model
    steps: int  # training steps from scratch
    warm_steps: int  # training steps when warm-started from a neighbouring λ
    ste_fraction: float  # last fraction of the steps with rounded latents (straight-through)
    lr: float  # latents' learning rate
    net_lr: float  # networks' learning rate
    lr_final_ratio: float
    batch_rays: int
    warp: bool  # the angular model: views see the latents through the disparity warp (False: ablation)


@dataclass(frozen=True)
class RuntimeConfig:
    """Cluster requests (Snakemake resources): the GPU stages get ``gpus``, ``stage_minutes``
    (``train_minutes`` for training) and ``mem_mb``; the CPU-only stages ``cpu_minutes`` and
    ``cpu_mem_mb``."""

    train_minutes: int
    stage_minutes: int
    mem_mb: int
    gpus: int
    cpu_minutes: int
    cpu_mem_mb: int


@dataclass(frozen=True)
class Config:
    """Every stage's parameters. QDLR's default rate points: ``target_bpp`` (target bitrates, planned to
    (rank, centroids) per light field by ``codecs.qdlr.rate_model``) or, when that is empty, the
    explicit ``rate_points`` pairs."""

    preset: str
    model: ModelConfig
    camera: CameraConfig
    train: TrainConfig
    lowrank: LowRankConfig
    distill: DistillConfig
    quantize: QuantizeConfig
    latent: LatentConfig
    runtime: RuntimeConfig
    rate_points: tuple[tuple[int, int], ...]
    target_bpp: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-native nested dict (lists, not tuples): for checkpoints, resume keys and the workflow."""
        return _json_native(dataclasses.asdict(self))

    def section_dict(self, name: str) -> dict[str, Any]:
        return _json_native(dataclasses.asdict(getattr(self, name)))


SECTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Config)
                                  if dataclasses.is_dataclass(typing.get_type_hints(Config)[f.name]))


def _json_native(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_native(v) for v in value]
    return value


def merge(cfg: Config, overrides: Mapping[str, Any], where: str = "--set") -> Config:
    """``cfg`` with ``{section: {key: value}}`` (or ``{field: value}`` for ``rate_points``, ``target_bpp``) applied.

    Unknown sections and keys, and values of the wrong type, raise ``LfcompError(where, ...)``.
    """
    if not isinstance(overrides, Mapping):
        raise LfcompError(where, "config overrides must be a mapping of sections")
    hints = typing.get_type_hints(Config)
    changes: dict[str, Any] = {}
    for section, values in overrides.items():
        if section not in hints or section == "preset":
            known = ", ".join(name for name in hints if name != "preset")
            raise LfcompError(where, f"unknown config section {section!r} (known: {known})")
        if section not in SECTIONS:
            changes[section] = _coerce(values, hints[section], where, section)
            continue
        if not isinstance(values, Mapping):
            raise LfcompError(where, f"section {section!r} must be a mapping")
        current = changes.get(section, getattr(cfg, section))
        field_types = typing.get_type_hints(type(current))
        for key, value in values.items():
            if key not in field_types:
                known = ", ".join(sorted(field_types))
                raise LfcompError(where, f"unknown key {section}.{key} (known: {known})")
        changes[section] = dataclasses.replace(
            current, **{key: _coerce(value, field_types[key], where, f"{section}.{key}") for key, value in values.items()})
    return dataclasses.replace(cfg, **changes)


def _coerce(value: Any, hint: Any, where: str, name: str) -> Any:
    """``value`` as the field type ``hint`` (ints for floats, lists for tuples); else a clean error."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise LfcompError(where, f"{name}: expected one of {', '.join(args)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _coerce(value, option, where, name)
            except LfcompError:
                continue
        raise LfcompError(where, f"{name}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise LfcompError(where, f"{name}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where, name) for v in value)
        if len(value) != len(args):
            raise LfcompError(where, f"{name}: expected a list of {len(args)}, got {value!r}")
        return tuple(_coerce(v, a, where, name) for v, a in zip(value, args))
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 5e-4 as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    raise LfcompError(where, f"{name}: expected {_type_name(hint)}, got {value!r}")


def _type_name(hint: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))
