"""The scene spec as untrusted data: documented limits, and the architecture's sizes by arithmetic.

A checkpoint or a bitstream carries a ``spec`` (see ``make_spec``) that a crafted file can set to
anything. ``check_spec`` validates every field's type and range against ``SPEC_LIMITS`` and returns
what the architecture implies — each weight and bias tensor's shape, the parameter count, the
multiply-accumulates and activation floats per rendered ray — without building the network, so a
reader can compare them with what the file holds and state a decode's cost before allocating.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lfcomp.config.sections import RenderPrecision
from lfcomp.errors import key_mismatch, short_repr
from lfcomp.models.registry import MODEL_KINDS

if TYPE_CHECKING:
    from lfcomp.config import ModelConfig

__all__ = ["SPEC_LIMITS", "VERTICAL_STEP_LIMIT", "Spec", "SpecLimits", "SpecShape", "check_spec", "is_vertical_step",
           "make_spec", "render_precision", "saves_parameters", "vertical_step"]

Spec = dict[str, Any]


def _json_native(value: Any) -> Any:
    return [_json_native(v) for v in value] if isinstance(value, (list, tuple)) else value


def make_spec(model_cfg: ModelConfig, grid: tuple[int, int], size: tuple[int, int],
              near: float, far: float, norm_focal: float, vertical_step: float = 1.0) -> Spec:
    """Everything needed to rebuild a SceneModel's architecture (no weights), its camera's geometry
    and the arithmetic it renders in. The spec is part of the bitstream format: its keys and values
    must stay as they are. The optional keys are written only when they differ from what every
    stream before them meant: ``render_precision`` when it is not fp32, ``vertical_step`` (the
    vertical view step as a multiple of the horizontal one) when it is not 1 and the kind's rays
    come from the camera."""
    if model_cfg.kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {model_cfg.kind!r} (choose from {', '.join(MODEL_KINDS)})")
    kind = MODEL_KINDS[model_cfg.kind]
    spec = {
        "kind": kind.name,
        "field": {k: _json_native(getattr(model_cfg, k)) for k in kind.field_keys},
        "samples": int(model_cfg.samples),
        "grid": [int(grid[0]), int(grid[1])],
        "size": [int(size[0]), int(size[1])],
        "near": float(near),
        "far": float(far),
        "norm_focal": float(norm_focal),
        "factor_ranks": {},
    }
    if model_cfg.render_precision != "fp32":
        spec["render_precision"] = model_cfg.render_precision
    if kind.learns_camera and float(vertical_step) != 1.0:
        spec["vertical_step"] = float(vertical_step)
    return spec


def render_precision(spec: Spec) -> str:
    """The arithmetic a (valid) spec's model renders in: ``fp32`` or ``bf16``."""
    return spec.get("render_precision", "fp32")


def vertical_step(spec: Spec) -> float:
    """The vertical view step of a (valid) spec's camera as a multiple of the horizontal one."""
    return float(spec.get("vertical_step", 1.0))


def is_vertical_step(value: Any) -> bool:
    """A usable vertical view step: a finite number (not a bool) with |value| in 1/8..8 (the
    ``VERTICAL_STEP_LIMIT``), wherever one is read (a spec, a stored calibration)."""
    return (type(value) in (int, float) and math.isfinite(value)
            and 1 / VERTICAL_STEP_LIMIT <= abs(value) <= VERTICAL_STEP_LIMIT)


def saves_parameters(n1: int, n2: int, rank: int) -> bool:
    """A layer is split into two rank-``rank`` factors (TT cores) only when they are smaller than the
    n1 × n2 matrix: the rule of ``decompose`` and of the rate model's planned architectures."""
    return rank * (n1 + n2) < n1 * n2


@dataclass(frozen=True)
class SpecLimits:
    """The largest architecture lfcomp reads (the paper's preset is 8×256, 128 samples, 9×9×512²)."""

    views: int = 256  # per side of the view grid
    pixels: int = 16384  # per side of a view
    samples: int = 1024  # per ray
    depth: int = 32  # trunk layers
    width: int = 2048  # trunk width
    freqs: int = 24  # positional-encoding frequencies (2^24·π still resolves in float32 inputs)
    parameters: int = 1 << 26  # weights + biases of the field (256 MiB as float32)
    magnitude: float = 1e6  # |near|, |far|, |norm_focal|


SPEC_LIMITS = SpecLimits()
SPEC_KEYS = {"kind", "field", "samples", "grid", "size", "near", "far", "norm_focal", "factor_ranks"}
OPTIONAL_SPEC_KEYS = {"render_precision", "vertical_step"}
VERTICAL_STEP_LIMIT = 8.0  # |vertical step| within 1/8..8 of the horizontal one
RENDER_PRECISIONS: tuple[str, ...] = typing.get_args(RenderPrecision)  # the config's values, in one place
_FIELD_RANGES = {"depth": (1, SPEC_LIMITS.depth), "width": (1, SPEC_LIMITS.width),
                 "pos_freqs": (0, SPEC_LIMITS.freqs), "dir_freqs": (0, SPEC_LIMITS.freqs)}


@dataclass(frozen=True)
class SpecShape:
    """What a valid spec implies, computed without building anything."""

    weight_shapes: list[tuple[int, ...]]  # every weight matrix, in the order the codecs store them
    bias_shapes: list[tuple[int, ...]]
    macs_per_ray: int  # multiply-accumulates of the field per rendered ray
    floats_per_ray: int  # activation floats alive per ray while rendering (an upper estimate)

    @property
    def weights(self) -> int:
        return sum(math.prod(s) for s in self.weight_shapes)

    @property
    def biases(self) -> int:
        return sum(math.prod(s) for s in self.bias_shapes)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{name} = {short_repr(value)} is not an integer in {low}..{high}")
    return value


def _number(value: Any, name: str, low: float, high: float) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or not low < value <= high:
        raise ValueError(f"{name} = {short_repr(value)} is not a finite number in ({low:g}, {high:g}]")
    return float(value)


def _pair(value: Any, name: str, high: int) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{name} = {short_repr(value)} is not a pair of integers")
    return _integer(value[0], name, 1, high), _integer(value[1], name, 1, high)



def check_spec(spec: Any) -> SpecShape:
    """Validate a spec against ``SPEC_LIMITS``; ValueError names the first problem."""
    optional = OPTIONAL_SPEC_KEYS & set(spec) if isinstance(spec, dict) else set()
    problem = key_mismatch(spec, SPEC_KEYS | optional, "spec")
    if problem:
        raise ValueError(problem)
    if render_precision(spec) not in RENDER_PRECISIONS:
        raise ValueError(f"render_precision = {short_repr(spec['render_precision'])} is not one of "
                         f"{', '.join(RENDER_PRECISIONS)}")
    if "vertical_step" in spec and not is_vertical_step(spec["vertical_step"]):
        raise ValueError(f"vertical_step = {short_repr(spec['vertical_step'])} is not a number with |value| in "
                         f"1/{VERTICAL_STEP_LIMIT:g}..{VERTICAL_STEP_LIMIT:g}")
    limits = SPEC_LIMITS
    if not isinstance(spec["kind"], str) or spec["kind"] not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {short_repr(spec['kind'])}")
    kind = MODEL_KINDS[spec["kind"]]
    if "vertical_step" in spec and not kind.learns_camera:
        raise ValueError(f"vertical_step is set for kind {kind.name}, whose rays do not come from the camera")
    _pair(spec["grid"], "grid", limits.views)
    _pair(spec["size"], "size", limits.pixels)
    samples = _integer(spec["samples"], "samples", 1, limits.samples)
    near = _number(spec["near"], "near", 0.0, limits.magnitude)
    far = _number(spec["far"], "far", 0.0, limits.magnitude)
    if not near < far:
        raise ValueError(f"near = {near:g} is not below far = {far:g}")
    _number(spec["norm_focal"], "norm_focal", 0.0, limits.magnitude)
    field = spec["field"]
    problem = key_mismatch(field, set(kind.field_keys), "field")
    if problem:
        raise ValueError(problem)
    for key, (low, high) in _FIELD_RANGES.items():
        if key in field:
            _integer(field[key], f"field.{key}", low, high)
    skips = field["skips"]
    if (not isinstance(skips, list) or len(set(map(repr, skips))) != len(skips)
            or not all(type(i) is int and 0 <= i < field["depth"] for i in skips)):
        raise ValueError(f"field.skips = {short_repr(skips)} is not a list of distinct layer indices")
    module = kind.load()
    shapes = module.slot_shapes(**field)
    ranks = spec["factor_ranks"]
    if not isinstance(ranks, dict) or not set(ranks) <= set(shapes):
        raise ValueError("factor_ranks must map slot names of the field to ranks")
    weight_shapes, bias_shapes, macs, widest = [], [], 0, 0
    for name, (n_in, n_out) in shapes.items():
        if name in ranks:
            rank = _integer(ranks[name], f"factor_ranks.{name}", 1, min(n_in, n_out))
            weight_shapes += [(rank, n_in), (n_out, rank)]
            macs += rank * (n_in + n_out)
        else:
            weight_shapes.append((n_out, n_in))
            macs += n_in * n_out
        bias_shapes.append((n_out,))
        widest = max(widest, n_in + n_out)
    shape = SpecShape(weight_shapes, bias_shapes, 0, 0)
    if shape.weights + shape.biases > limits.parameters:
        raise ValueError(f"the field would have {shape.weights + shape.biases} parameters, "
                         f"over the limit of {limits.parameters}")
    evaluations = module.evaluations_per_ray(samples)
    # inputs of the widest layer and its output, the encoded inputs, and the sample bookkeeping
    floats = evaluations * (2 * widest + shapes[next(iter(shapes))][0] + 16)
    return SpecShape(weight_shapes, bias_shapes, evaluations * macs, floats)
