"""Resume state of a long stage: saved periodically and on a stop request, beside (not as) its output.

A resume state holds the whole ``TrainingLoop`` (model, optimiser, scheduler, ray sampler and
global RNG states, curve) and a stage's own variables, so that a resumed run continues bit for bit
as the uninterrupted one. It only saves time: one that cannot be used (unreadable, of another run,
or of the wrong structure) is ignored with a warning and the stage starts over.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lfcomp.artifacts import atomic_output

__all__ = ["Resume", "TrainingLoop"]

log = logging.getLogger("lfcomp")


@dataclass
class TrainingLoop:
    """The mutable state of one optimisation loop (what a resume file holds)."""

    model: torch.nn.Module
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    history: list[dict[str, float]]
    running: list[float]
    completed: int = 0


def _global_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The default generators' states: the CPU one, and the CUDA device's when training there."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_global_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    if "cpu" in state:
        torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _tensors_differ(saved: Any, expected: dict[str, torch.Tensor], what: str) -> str | None:
    """Why ``saved`` is not a mapping of ``expected``'s names to tensors of their shapes and dtypes."""
    if not isinstance(saved, dict):
        return f"{what} is not a mapping"
    if set(saved) != set(expected):
        names = sorted(map(str, set(saved) ^ set(expected)))
        return f"{what} names differ ({', '.join(names[:3])}{' ...' if len(names) > 3 else ''})"
    for name, tensor in saved.items():
        want = expected[name]
        if not isinstance(tensor, torch.Tensor) or tensor.shape != want.shape or tensor.dtype != want.dtype:
            return f"{what} {name} is not a {want.dtype} tensor of shape {tuple(want.shape)}"
    return None


def _structure_differs(saved: Any, template: Any, what: str) -> str | None:
    """Why ``saved`` does not have the structure of ``template``: the same keys, tensor shapes and
    dtypes, and leaf types (lists may differ in length)."""
    if isinstance(template, torch.Tensor):
        if not isinstance(saved, torch.Tensor) or saved.shape != template.shape or saved.dtype != template.dtype:
            return f"{what} is not a {template.dtype} tensor of shape {tuple(template.shape)}"
    elif isinstance(template, dict):
        if not isinstance(saved, dict) or set(saved) != set(template):
            return f"{what} does not have the keys {', '.join(sorted(map(str, template)))[:80]}"
        for key in template:
            problem = _structure_differs(saved[key], template[key], f"{what}.{key}")
            if problem:
                return problem
    elif isinstance(template, (list, tuple)):
        if not isinstance(saved, (list, tuple)):
            return f"{what} is not a list"
    elif isinstance(template, (int, float)) and not isinstance(template, bool):
        if isinstance(saved, bool) or not isinstance(saved, (int, float)):
            return f"{what} is not a number"
    elif template is not None and type(saved) is not type(template):
        return f"{what} is not a {type(template).__name__}"
    return None


def _optimiser_differs(saved: Any, optimiser: torch.optim.Optimizer) -> str | None:
    """Why ``saved`` is not an optimiser state of ``optimiser``'s parameters (groups, sizes, shapes)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict) \
            or not isinstance(saved.get("param_groups"), list):
        return "optimiser state is not a mapping of state and param_groups"
    groups = optimiser.param_groups
    if len(saved["param_groups"]) != len(groups) or not all(
            isinstance(g, dict) and isinstance(g.get("params"), list) and len(g["params"]) == len(mine["params"])
            for g, mine in zip(saved["param_groups"], groups)):
        return "optimiser parameter groups differ"
    for saved_group, mine in zip(saved["param_groups"], groups):
        settings = {key: value for key, value in mine.items() if key != "params"}
        problem = _structure_differs({key: value for key, value in saved_group.items() if key != "params"},
                                     settings, "optimiser settings")
        if problem:
            return problem
    params = {index: param for g, mine in zip(saved["param_groups"], groups)
              for index, param in zip(g["params"], mine["params"])}
    for index, entry in saved["state"].items():
        if index not in params or not isinstance(entry, dict):
            return f"optimiser state of an unknown parameter {str(index)[:20]}"
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[index].shape:
                return f"optimiser {key} of a parameter of shape {tuple(params[index].shape)} is {tuple(value.shape)}"
    return None


def _rng_differs(saved: Any) -> str | None:
    """Why ``saved`` is not a global RNG state ({} in states saved before it was kept)."""
    if not isinstance(saved, dict) or not set(saved) <= {"cpu", "cuda"} \
            or not all(isinstance(v, torch.Tensor) and v.dtype == torch.uint8 for v in saved.values()):
        return "global_rng is not a mapping of RNG states"
    return _structure_differs(saved["cpu"], torch.get_rng_state(), "global_rng.cpu") if "cpu" in saved else None


def _state_mismatch(state: dict[str, Any], loop: TrainingLoop, extra: dict[str, Any] | None) -> str | None:
    """Why a resume state (of this run's fingerprint) cannot be loaded into ``loop``; None if it can."""
    missing = [key for key in ("step", "model", "optimiser", "scheduler", "generator", "requires_grad", "history",
                               "running", *(["extra"] if extra is not None else [])) if key not in state]
    if missing:
        return f"missing {', '.join(missing)}"
    if type(state["step"]) is not int or state["step"] < 0:
        return f"step = {str(state['step'])[:20]} is not a count of steps"
    params = {name: param.requires_grad for name, param in loop.model.named_parameters()}
    return (_tensors_differ(state["model"], loop.model.state_dict(), "model tensor")
            or _structure_differs(state["requires_grad"], params, "requires_grad")
            or _optimiser_differs(state["optimiser"], loop.optimiser)
            or _structure_differs(state["scheduler"], loop.scheduler.state_dict(), "scheduler")
            or _structure_differs(state["generator"], loop.generator.get_state(), "generator")
            or _rng_differs(state.get("global_rng", {}))
            or (None if isinstance(state["history"], list) and all(isinstance(h, dict) for h in state["history"])
                else "history is not a list of records")
            or (None if isinstance(state["running"], list) and all(isinstance(v, float) for v in state["running"])
                else "running is not a list of numbers")
            or (_structure_differs(state["extra"], extra, "extra") if extra is not None else None))


@dataclass
class Resume:
    """Periodic, restartable state of a long stage, kept beside (not as) its output.

    ``fingerprint`` identifies the run (stage, settings, inputs): a state saved by a different run
    is ignored. ``extra_state``/``load_extra_state`` carry a stage's own variables (ADMM's Z, U).
    The global torch RNG (CPU, and the device's) is saved too: a stage may draw from it during
    training (the latent codec's quantisation noise), and a resumed run must draw the same numbers.
    """

    path: Path
    every: int
    fingerprint: str
    extra_state: Callable[[], dict[str, Any]] | None = None
    load_extra_state: Callable[[dict[str, Any]], None] | None = None

    def save(self, loop: TrainingLoop, step: int) -> None:
        with atomic_output(self.path) as tmp:
            torch.save(self._state(loop, step), tmp)

    def restore(self, loop: TrainingLoop) -> int:
        """Load a matching saved state into ``loop``; returns the last completed step (0 if none).

        A resume state only saves time, so one that cannot be used is ignored with a warning and
        the stage starts over: an unreadable or truncated file, a state of another run (its
        ``fingerprint``), or one of the wrong structure (missing entries; tensors, optimiser or RNG
        states whose names, shapes or dtypes differ from this run's). ``loop`` is then left as it was.
        """
        if not self.path.is_file():
            return 0
        try:
            state = torch.load(self.path, map_location=loop.generator.device, weights_only=True)
        except Exception as exc:  # a damaged resume file only costs the time it saved
            log.warning("ignoring unreadable resume state %s (%s)", self.path, type(exc).__name__)
            return 0
        if not isinstance(state, dict):
            log.warning("ignoring resume state %s: it is a %s, not a resume state", self.path, type(state).__name__)
            return 0
        if state.get("fingerprint") != self.fingerprint:
            log.warning("ignoring resume state %s: it belongs to another run (settings or inputs changed)",
                        self.path)
            return 0
        problem = _state_mismatch(state, loop, self.extra_state() if self.extra_state else None)
        if problem is None:
            before = copy.deepcopy(self._state(loop, loop.completed))
            try:
                self._load(state, loop)
            except Exception as exc:  # anything the checks above did not foresee: put the loop back
                self._load(before, loop)
                problem = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        if problem is not None:
            log.warning("ignoring resume state %s: wrong structure for this run (%s)", self.path, problem)
            return 0
        log.info("resuming from %s after step %d", self.path, loop.completed)
        return loop.completed

    def _state(self, loop: TrainingLoop, step: int) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint, "step": step,
            "model": loop.model.state_dict(), "optimiser": loop.optimiser.state_dict(),
            "scheduler": loop.scheduler.state_dict(), "generator": loop.generator.get_state(),
            "requires_grad": {n: p.requires_grad for n, p in loop.model.named_parameters()},
            "history": loop.history, "running": loop.running,
            "extra": self.extra_state() if self.extra_state else {},
            "global_rng": _global_rng_state(loop.generator.device),
        }

    def _load(self, state: dict[str, Any], loop: TrainingLoop) -> None:
        loop.model.load_state_dict(state["model"])
        for name, param in loop.model.named_parameters():
            param.requires_grad_(state["requires_grad"][name])
        loop.optimiser.load_state_dict(state["optimiser"])
        loop.scheduler.load_state_dict(state["scheduler"])
        loop.generator.set_state(state["generator"].cpu())
        _set_global_rng_state(state.get("global_rng", {}), loop.generator.device)
        loop.history[:] = state["history"]
        loop.running[:] = state["running"]
        if self.load_extra_state:
            self.load_extra_state(state["extra"])
        loop.completed = int(state["step"])

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
