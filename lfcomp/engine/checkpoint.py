"""Stage checkpoints (``.pt``): the scene spec, camera values, weights and each stage's report.

A checkpoint is a plain dict of tensors and JSON-able values (loaded with ``weights_only=True``):
``format``, ``stage`` (nerf | lowrank | distill | quantize), ``spec``, ``camera``, ``state_dict``,
``history`` (training curve), ``report`` (PSNR, parameter count, ...), ``stages`` (the reports of
all stages so far, for the paper's Table 2) and stage-specific extras.

A checkpoint is untrusted input: ``load_checkpoint`` refuses, with a one-line ``LfcompError``
naming the file, one that is truncated or not a torch file, one of another stage, and one whose
contents do not fit together — a spec outside ``lfcomp.models.spec``'s limits (checked before any
network is built), camera values that are not finite, a ``state_dict`` whose names, shapes or
dtypes differ from what the spec builds (compared on a weightless "meta" skeleton) or that holds
NaN/Inf, and stage extras (rank, quantized model, held-out views) that do not fit the spec. A
codec's own stage (the latent codec's ``latent``) is checked by its package's ``checkpoint`` module.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any

import torch

from lfcomp.artifacts import atomic_output
from lfcomp.errors import LfcompError, short_repr
from lfcomp.models.scene import SceneModel
from lfcomp.models.spec import SpecShape, check_spec

__all__ = ["FORMAT", "SCENE_STAGES", "check_holdout_views", "check_lightfield_matches", "check_state_dict",
           "load_checkpoint", "model_from_checkpoint", "save_checkpoint"]

FORMAT = "lfcomp-checkpoint-v1"
SCENE_STAGES = ("nerf", "lowrank", "distill", "quantize")  # checkpoints of a SceneModel
STAGE_CHECKS = {"latent": "lfcomp.codecs.latent.checkpoint"}  # stage → module with check_checkpoint(ckpt, path)
CAMERA_KEYS = ("focal", "baseline", "kappa")
QUANTIZED_KEYS = {"centroids", "codebook", "weight_names", "weight_shapes", "weight_symbols", "weight_ranges",
                  "bias_names", "bias_codes", "bias_ranges"}  # the fields of qdlr.quantize.QuantizedModel
MAX_SYMBOL_OFFSET = 65535  # a weight symbol is a label < N or N + a 16-bit code


def save_checkpoint(path: str | Path, stage: str, model: SceneModel, **extra: Any) -> None:
    """Write a checkpoint atomically."""
    payload = {
        "format": FORMAT,
        "stage": stage,
        "spec": model.spec,
        "camera": model.camera.values(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)



def load_checkpoint(path: str | Path, stages: tuple[str, ...]) -> dict[str, Any]:
    """Read and validate a checkpoint written by one of ``stages`` (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        raise LfcompError(path, "is a directory, expected a checkpoint file")
    if not path.is_file():
        raise LfcompError(path, "no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or truncated files
        reason = " ".join(str(exc).split())[:160]
        raise LfcompError(path, f"not a readable lfcomp checkpoint, truncated or damaged? "
                                f"({type(exc).__name__}{': ' + reason if reason else ''})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise LfcompError(path, "not an lfcomp checkpoint (missing format tag)")
    stage = ckpt.get("stage")
    if stage not in stages:
        raise LfcompError(path, f"is a {short_repr(stage)} checkpoint, expected {' or '.join(stages)}")
    if stage in SCENE_STAGES:
        _check_scene_checkpoint(ckpt, path)
    elif stage in STAGE_CHECKS:
        importlib.import_module(STAGE_CHECKS[stage]).check_checkpoint(ckpt, path)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], camera_trainable: bool = False) -> SceneModel:
    """The SceneModel of a checkpoint that ``load_checkpoint`` accepted."""
    model = SceneModel(ckpt["spec"], ckpt["camera"], camera_trainable=camera_trainable)
    model.load_state_dict(ckpt["state_dict"])
    return model


def check_lightfield_matches(ckpt: dict[str, Any], ckpt_path: str | Path, lightfield: Any,
                             lightfield_path: str | Path) -> None:
    """A stage that trains further on views must get the light field its checkpoint was made for."""
    spec = ckpt["spec"]
    if list(lightfield.grid) != list(spec["grid"]) or list(lightfield.size) != list(spec["size"]):
        raise LfcompError(lightfield_path, "has {}x{} views of {}x{} px, but {} was trained on {}x{} views of {}x{} px"
                          .format(*lightfield.grid, *lightfield.size, ckpt_path, *spec["grid"], *spec["size"]))


def check_state_dict(state: Any, expected: dict[str, torch.Tensor], path: str | Path, what: str = "state_dict") -> None:
    """``state`` must hold exactly ``expected``'s tensor names with their shapes and dtypes, all finite."""
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise LfcompError(path, f"{what} is not a mapping of names to tensors")
    def few(names: list[str]) -> str:
        return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")

    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        listed = "; ".join(filter(None, [missing and f"missing {few(missing)}",
                                         unexpected and f"unexpected {few(unexpected)}"]))
        raise LfcompError(path, f"{what} does not match the model it describes ({listed})")
    for name, tensor in state.items():
        want = expected[name]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            raise LfcompError(path, f"{what} tensor {name} is {tensor.dtype} {tuple(tensor.shape)}, the model it "
                                    f"describes needs {want.dtype} {tuple(want.shape)}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise LfcompError(path, f"{what} tensor {name} holds NaN or Inf")


def check_holdout_views(holdout: Any, grid: tuple[int, int] | list[int], path: str | Path) -> None:
    """Held-out views, as stored in a checkpoint or in cores, must be distinct views of ``grid``."""
    U, V = grid
    if not isinstance(holdout, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(type(i) is int for i in p)
            and 0 <= p[0] < U and 0 <= p[1] < V for p in holdout) or len({tuple(p) for p in holdout}) != len(holdout):
        raise LfcompError(path, f"holdout_views = {short_repr(holdout)} are not distinct views of the {U}x{V} grid")


def _check_scene_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    """Spec, camera, state_dict and the stage's extras of a SceneModel checkpoint fit together."""
    try:
        shape = check_spec(ckpt.get("spec"))
    except ValueError as exc:
        raise LfcompError(path, f"invalid model spec ({exc})") from None
    spec, camera = ckpt["spec"], ckpt.get("camera")
    if not isinstance(camera, dict) or not all(type(camera.get(k)) in (int, float) and math.isfinite(camera[k])
                                               for k in CAMERA_KEYS) or not camera["focal"] > 0:
        raise LfcompError(path, f"camera must hold finite {', '.join(CAMERA_KEYS)} with focal > 0, "
                                f"got {short_repr(camera, 80)}")
    with torch.device("meta"):  # the architecture's tensors without their memory
        expected = SceneModel(spec, camera, camera_trainable=False).state_dict()
    check_state_dict(ckpt.get("state_dict"), expected, path)
    stages = ckpt.get("stages")
    if not isinstance(stages, dict) or not all(isinstance(r, dict) for r in stages.values()):
        raise LfcompError(path, f"'stages' must map stage names to reports, got {short_repr(stages)}")
    check_holdout_views(ckpt.get("holdout_views", []), spec["grid"], path)
    stage = ckpt["stage"]
    rank = ckpt.get("rank")
    if stage in ("lowrank", "distill") or rank is not None:
        width = spec["field"]["width"]
        if type(rank) is not int or not 1 <= rank <= width:
            raise LfcompError(path, f"rank = {short_repr(rank)} is not an integer in 1..{width}")
    if stage == "quantize":
        _check_quantized(ckpt.get("quantized"), expected, shape, path)


def _check_quantized(quantized: Any, expected: dict[str, torch.Tensor], shape: SpecShape, path: Path) -> None:
    """The quantized model (``QuantizedModel.to_dict()``) must describe exactly the spec's tensors."""
    def bad(problem: str) -> LfcompError:
        return LfcompError(path, f"quantized model does not fit the spec ({problem})")

    if not isinstance(quantized, dict) or set(quantized) != QUANTIZED_KEYS:
        raise bad(f"expected the keys {', '.join(sorted(QUANTIZED_KEYS))}")
    n = quantized["centroids"]
    if type(n) is not int or not 2 <= n <= 65536:
        raise bad(f"N = {short_repr(n)} is not an integer in 2..65536")
    codebook = quantized["codebook"]
    if not isinstance(codebook, torch.Tensor) or codebook.shape != (n,) or not codebook.is_floating_point() \
            or not bool(torch.isfinite(codebook).all()):
        raise bad(f"the codebook must be {n} finite values")
    for kind, names_key, values_key, ranges_key, want, high in (
            ("weight", "weight_names", "weight_symbols", "weight_ranges", shape.weight_shapes, n + MAX_SYMBOL_OFFSET),
            ("bias", "bias_names", "bias_codes", "bias_ranges", shape.bias_shapes, MAX_SYMBOL_OFFSET)):
        names, values, ranges = quantized[names_key], quantized[values_key], quantized[ranges_key]
        if not (isinstance(names, list) and isinstance(values, list) and len(names) == len(values) == len(want)
                and all(isinstance(name, str) and name in expected for name in names)
                and len(set(names)) == len(names)):
            raise bad(f"expected {len(want)} named {kind} tensors of the model")
        sizes = [expected[name].numel() for name in names]
        if sorted(sizes) != sorted(math.prod(s) for s in want):
            raise bad(f"the {kind} tensors named are not the model's {kind}es" if kind == "bias"
                      else f"the {kind} tensors named are not the model's weight matrices")
        for name, size, tensor in zip(names, sizes, values):
            if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.int64 or tensor.numel() != size:
                raise bad(f"{name} needs {size} int64 codes")
            if size and not 0 <= int(tensor.min()) <= int(tensor.max()) <= high:
                raise bad(f"codes of {name} outside 0..{high}")
        if not isinstance(ranges, torch.Tensor) or ranges.shape != (len(want), 2) or not ranges.is_floating_point() \
                or not bool(torch.isfinite(ranges).all()):
            raise bad(f"{ranges_key} must be {len(want)}x2 finite values")
    shapes = quantized["weight_shapes"]
    names = quantized["weight_names"]
    if not isinstance(shapes, list) or len(shapes) != len(names) or any(
            not isinstance(s, (list, tuple)) or tuple(s) != tuple(expected[name].shape)
            for s, name in zip(shapes, names)):
        raise bad("weight_shapes differ from the model's")
