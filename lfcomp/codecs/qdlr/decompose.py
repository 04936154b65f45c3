"""Stage 4 (paper §2.4): TT decomposition of the low-rank weights into cores Q1 and Q2.

Each weight W (n1 inputs × n2 outputs) is decomposed with tensorly's TT-SVD, ranks [1, r, 1], into
Q1 (1 × n1 × r) and Q2 (r × n2 × 1), only where that saves parameters, r·(n1 + n2) < n1·n2. Other
layers and all biases are kept as they are. The cores are written to a zarr group: one array per
core, the scene spec and camera as attributes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import tensorly as tl
import torch
import zarr
from tensorly.decomposition import tensor_train

from lfcomp.artifacts import atomic_output
from lfcomp.models.spec import saves_parameters
from lfcomp.errors import LfcompError
from lfcomp.models.mlp import FactorizedLinear, slot_bias, slot_weight_params
from lfcomp.models.scene import SceneModel

log = logging.getLogger("lfcomp")
FORMAT = "lfcomp-tt-cores-v1"


def tt_decompose_matrix(matrix: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """TT cores (1, n1, r) and (r, n2, 1) of an n1 × n2 matrix."""
    factors = tensor_train(tl.tensor(matrix.astype(np.float64)), rank=[1, rank, 1]).factors
    return np.asarray(factors[0], dtype=np.float32), np.asarray(factors[1], dtype=np.float32)


def tt_reconstruct(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    return q1[0] @ q2[..., 0]


def decompose_model(model: SceneModel, rank: int) -> dict[str, dict[str, np.ndarray]]:
    """Per slot: {Q1, Q2, bias} where decomposition saves parameters, else {weight, bias}."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name, slot in model.field.named_slots():
        params = slot_weight_params(slot)
        if len(params) != 1:
            raise ValueError(f"slot {name} is already factorized")
        weight = params[0].detach().cpu().numpy()  # (out, in)
        bias = slot_bias(slot).detach().cpu().numpy()
        n2, n1 = weight.shape
        if saves_parameters(n1, n2, rank):
            q1, q2 = tt_decompose_matrix(weight.T, rank)
            error = np.linalg.norm(tt_reconstruct(q1, q2) - weight.T) / max(np.linalg.norm(weight), 1e-12)
            log.info("decompose %s (%d×%d) → Q1 %s, Q2 %s, relative error %.2e", name, n1, n2, q1.shape, q2.shape, error)
            layers[name] = {"Q1": q1, "Q2": q2, "bias": bias}
        else:
            log.info("keep %s (%d×%d): r·(n1+n2)=%d ≥ n1·n2=%d", name, n1, n2, rank * (n1 + n2), n1 * n2)
            layers[name] = {"weight": weight, "bias": bias}
    return layers


def write_cores(path: str | Path, layers: dict[str, dict[str, np.ndarray]], attrs: dict[str, Any]) -> None:
    with atomic_output(path) as tmp:
        group = zarr.open_group(str(tmp), mode="w")
        for name, arrays in layers.items():
            for key, value in arrays.items():
                group.create_array(f"slots/{name}/{key}", data=value)
        group.attrs.update({"format": FORMAT, "slots": list(layers), **attrs})


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"


def _expected_cores(attrs: dict[str, Any], declared: dict[str, dict[str, tuple[int, ...]]],
                    path: Path) -> dict[str, dict[str, tuple[int, ...]]]:
    """The array shapes per slot that the cores' spec implies (ranks from the declared Q1 shapes),
    after checking the attributes distill reads; nothing is allocated."""
    from lfcomp.engine.checkpoint import check_holdout_views
    from lfcomp.models.spec import check_spec

    spec = attrs.get("spec")
    if not isinstance(spec, dict):
        raise LfcompError(path, "TT cores lack their model spec")
    ranks = {name: shapes["Q1"][-1] for name, shapes in declared.items() if len(shapes.get("Q1", ())) == 3}
    try:
        check_spec({**spec, "factor_ranks": ranks})
    except ValueError as exc:
        raise LfcompError(path, f"invalid model spec in the TT cores ({exc})") from None
    camera, state = attrs.get("camera"), attrs.get("camera_state")
    numbers = [camera.get(k) if isinstance(camera, dict) else None for k in ("focal", "baseline", "kappa")]
    numbers += [state.get(k) if isinstance(state, dict) else None for k in ("log_focal", "baseline", "kappa")]
    if not all(type(v) in (int, float) and np.isfinite(v) for v in numbers) or not numbers[0] > 0:
        raise LfcompError(path, "TT cores' camera or camera_state is not finite numbers (focal > 0)")
    if type(attrs.get("rank")) is not int or not isinstance(attrs.get("stages"), dict):
        raise LfcompError(path, "TT cores lack their rank or stage reports")
    check_holdout_views(attrs.get("holdout_views", []), spec["grid"], path)
    with torch.device("meta"):
        model = SceneModel({**spec, "factor_ranks": ranks}, camera, camera_trainable=False)
    expected = {}
    for name, slot in model.field.named_slots():
        if isinstance(slot, FactorizedLinear):
            expected[name] = {"Q1": (1, slot.in_features, ranks[name]), "Q2": (ranks[name], slot.out_features, 1),
                              "bias": (slot.out_features,)}
        else:
            expected[name] = {"weight": tuple(slot.weight.shape), "bias": tuple(slot.bias.shape)}
    return expected


def read_cores(path: str | Path) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Read the cores written by ``write_cores``; shapes are checked against the spec before reading,
    and values must be finite floats (any problem: a one-line error naming ``path``)."""
    path = Path(path)
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
    except Exception:
        raise LfcompError(path, "not a zarr group of TT cores") from None
    if attrs.get("format") != FORMAT:
        raise LfcompError(path, "not an lfcomp TT-cores zarr (missing format tag)")
    slots = attrs.get("slots")
    if not isinstance(slots, list) or not all(isinstance(name, str) for name in slots):
        raise LfcompError(path, "TT cores lack their list of slots")
    try:
        arrays = {name: dict(group[f"slots/{name}"].arrays()) for name in slots}
    except Exception as exc:
        raise LfcompError(path, f"incomplete TT cores ({_reason(exc)})") from None
    declared = {name: {key: tuple(arr.shape) for key, arr in group_arrays.items()}
                for name, group_arrays in arrays.items()}
    expected = _expected_cores(attrs, declared, path)
    if set(declared) != set(expected):
        raise LfcompError(path, f"TT cores hold slots {sorted(declared)}, the spec has {sorted(expected)}")
    for name, shapes in expected.items():
        if declared[name] != shapes:
            raise LfcompError(path, f"TT cores of {name} are {declared[name]}, the spec needs {shapes}")
    try:
        layers = {name: {key: np.asarray(arr[...]) for key, arr in group_arrays.items()}
                  for name, group_arrays in arrays.items()}
    except Exception as exc:
        raise LfcompError(path, f"damaged TT cores ({_reason(exc)})") from None
    for name, group_arrays in layers.items():
        for key, values in group_arrays.items():
            if not np.issubdtype(values.dtype, np.floating) or not np.all(np.isfinite(values)):
                raise LfcompError(path, f"TT cores {name}/{key} are not finite floats ({values.dtype})")
    return layers, attrs


def camera_state(model: SceneModel) -> dict[str, float]:
    """The camera's raw parameters (float32 values as Python floats), for exact round trips."""
    return {k: float(v) for k, v in model.camera.state_dict().items()}


def load_camera_state(model: SceneModel, state: dict[str, float]) -> None:
    model.camera.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
