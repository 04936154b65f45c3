"""What every training stage shares: devices, ray batches, the optimisation loop, evaluation.

Each stage (train, lowrank, distill, quantize) is an ordinary Adam loop over random rays of all
views with an exponential learning-rate decay to ``lr_final_ratio × lr`` (paper §3.1); stages
differ only in which parameters they train and what they add to the loss.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from lfcomp.artifacts import atomic_output
from lfcomp.errors import LfcompError
from lfcomp.evaluation.metrics import per_view_psnr
from lfcomp.models.scene import SceneModel, render_views

log = logging.getLogger("lfcomp")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a clean error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LfcompError("--device", "cuda requested but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise LfcompError("--device", f"unknown device {name!r} (auto, cpu or cuda)")
    return torch.device(name)


def mse_to_psnr(mse: float) -> float:
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


@dataclass
class RayBatches:
    """All pixels of a light field as training rays; samples random batches on the device."""

    colours: torch.Tensor  # (U·V·H·W, 3) float in [0, 1]
    grid: tuple[int, int]
    size: tuple[int, int]
    generator: torch.Generator
    training_views: torch.Tensor  # flat indices u·V + v of the views rays are drawn from

    @classmethod
    def from_views(cls, views: np.ndarray, device: torch.device, seed: int,
                   holdout: list[list[int]] | None = None) -> RayBatches:
        """All pixels of all views except the ``holdout`` views [[u, v], ...]."""
        (U, V), size = views.shape[:2], views.shape[2:4]
        colours = torch.from_numpy(views.reshape(-1, 3)).to(device=device, dtype=torch.float32) / 255.0
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        excluded = {int(u) * V + int(v) for u, v in holdout or []}
        training = torch.tensor([i for i in range(U * V) if i not in excluded], device=device)
        if training.numel() == 0:
            raise LfcompError("train.holdout_views", "every view is held out; nothing to train on")
        return cls(colours, (int(U), int(V)), (int(size[0]), int(size[1])), generator, training)

    def sample(self, batch: int) -> tuple[torch.Tensor, ...]:
        """(s, t, x, y, target colour) of ``batch`` random rays of the training views."""
        (U, V), (H, W) = self.grid, self.size
        device = self.colours.device
        pick = torch.randint(0, self.training_views.numel(), (batch,), generator=self.generator, device=device)
        view = self.training_views[pick]
        pixel = torch.randint(0, H * W, (batch,), generator=self.generator, device=device)
        index = view * (H * W) + pixel
        x = (pixel % W).float()
        y = (pixel // W).float()
        s = (view % V).float() - (V - 1) / 2.0
        t = (view // V).float() - (U - 1) / 2.0
        return s, t, x, y, self.colours[index]


def eval_positions(grid: tuple[int, int], eval_views: str | int) -> list[tuple[int, int]]:
    """Views used for a stage's PSNR report: ``"all"``, or k views spread over the grid.

    k = m² gives an m×m lattice including corners and centre; other k give the centre and the
    corners (5), truncated to k.
    """
    U, V = grid
    everything = [(u, v) for u in range(U) for v in range(V)]
    if eval_views == "all" or int(eval_views) >= U * V:
        return everything
    k = int(eval_views)
    m = int(round(math.sqrt(k)))
    if m * m == k and m > 1:
        rows = sorted({int(round(x)) for x in np.linspace(0, U - 1, m)})
        cols = sorted({int(round(x)) for x in np.linspace(0, V - 1, m)})
        return [(u, v) for u in rows for v in cols]
    picks = [(U // 2, V // 2), (0, 0), (0, V - 1), (U - 1, 0), (U - 1, V - 1)]
    return picks[:max(k, 1)]


def _psnr_of(model: SceneModel, views: np.ndarray, positions: list[tuple[int, int]],
             chunk_rays: int) -> dict[str, Any]:
    rendered = render_views(model, [(float(u), float(v)) for u, v in positions], chunk_rays)
    reference = np.stack([views[u, v] for u, v in positions])
    rgb, y = per_view_psnr(reference, rendered)
    return {"psnr_rgb": float(rgb.mean()), "psnr_y": float(y.mean()), "views": [list(p) for p in positions],
            "psnr_rgb_views": rgb.round(4).tolist()}


def evaluate(model: SceneModel, views: np.ndarray, train_cfg: dict[str, Any]) -> dict[str, Any]:
    """PSNR (RGB and Y), per view and mean, on ``train.eval_views`` of the training views; held-out
    views (``train.holdout_views``) are reported apart under ``holdout``."""
    holdout = [tuple(map(int, p)) for p in train_cfg.get("holdout_views") or []]
    positions = [p for p in eval_positions(views.shape[:2], train_cfg["eval_views"]) if p not in holdout]
    report = _psnr_of(model, views, positions, train_cfg["chunk_rays"])
    if holdout:
        report["holdout"] = _psnr_of(model, views, holdout, train_cfg["chunk_rays"])
        log.info("held-out views %s: PSNR %.2f dB", holdout, report["holdout"]["psnr_rgb"])
    return report


def optimise(model: SceneModel, rays: RayBatches, params: Iterable[torch.nn.Parameter] | list[dict],
             steps: int, lr: float, lr_final_ratio: float, batch_rays: int, desc: str,
             extra_loss: Callable[[], torch.Tensor] | None = None,
             on_step: Callable[[int], None] | None = None, loss_reduction: str = "mean",
             log_every: int = 100, precision: str = "fp32",
             render: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None,
             resume: Resume | None = None) -> list[dict[str, float]]:
    """Adam over random ray batches; returns the training curve [{step, loss, psnr}].

    ``loss_reduction="sum"`` uses the paper's ``‖c' − c_gt‖²`` (sum over the batch), which sets the
    scale that ADMM's ρ is relative to. ``extra_loss`` is added every step (e.g. ADMM's augmented
    term); ``on_step(step)`` runs after each update (e.g. ADMM's Z and U updates). ``render``
    replaces ``model`` as the renderer (quantization renders through a shared trainable codebook).
    With ``resume``, the loop saves its complete state periodically and on interruption, and
    continues from a saved state instead of starting over.
    """
    render = render or model
    model.train()
    optimiser = torch.optim.Adam(params, lr=lr)
    gamma = lr_final_ratio ** (1.0 / max(steps, 1))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma)
    history: list[dict[str, float]] = []
    running: list[float] = []
    use_bf16 = precision == "bf16"
    device_type = rays.colours.device.type
    loop = TrainingLoop(model, optimiser, scheduler, rays.generator, history, running)
    first = resume.restore(loop) + 1 if resume else 1
    _STOP.active = True
    try:
        _run_steps(first, steps, desc, loop, render, rays, batch_rays, use_bf16, device_type,
                   loss_reduction, extra_loss, on_step, log_every, resume)
    finally:
        _STOP.active = False
    return history


class _StopFlag:
    active = False  # a training loop is running
    requested = False


_STOP = _StopFlag()


def request_stop() -> bool:
    """Ask the running training loop to stop after its current step (SIGTERM from Snakemake or a
    SLURM time limit); it saves its resume state first. False when no loop is running."""
    if _STOP.active:
        _STOP.requested = True
    return _STOP.active


@dataclass
class TrainingLoop:
    """The mutable state of one optimisation loop (what a resume file holds)."""

    model: SceneModel
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    history: list[dict[str, float]]
    running: list[float]
    completed: int = 0


@dataclass
class Resume:
    """Periodic, restartable state of a long stage, kept beside (not as) its output.

    ``fingerprint`` identifies the run (stage, settings, inputs): a state saved by a different run
    is ignored. ``extra_state``/``load_extra_state`` carry a stage's own variables (ADMM's Z, U).
    """

    path: Path
    every: int
    fingerprint: str
    extra_state: Callable[[], dict[str, Any]] | None = None
    load_extra_state: Callable[[dict[str, Any]], None] | None = None

    def save(self, loop: TrainingLoop, step: int) -> None:
        state = {
            "fingerprint": self.fingerprint, "step": step,
            "model": loop.model.state_dict(), "optimiser": loop.optimiser.state_dict(),
            "scheduler": loop.scheduler.state_dict(), "generator": loop.generator.get_state(),
            "requires_grad": {n: p.requires_grad for n, p in loop.model.named_parameters()},
            "history": loop.history, "running": loop.running,
            "extra": self.extra_state() if self.extra_state else {},
        }
        with atomic_output(self.path) as tmp:
            torch.save(state, tmp)

    def restore(self, loop: TrainingLoop) -> int:
        """Load a matching saved state into ``loop``; returns the last completed step (0 if none)."""
        if not self.path.is_file():
            return 0
        try:
            state = torch.load(self.path, map_location=loop.generator.device, weights_only=True)
        except Exception as exc:  # a damaged resume file only costs the time it saved
            log.warning("ignoring unreadable resume state %s (%s)", self.path, type(exc).__name__)
            return 0
        if state.get("fingerprint") != self.fingerprint:
            log.warning("ignoring resume state %s: it belongs to another run (settings or inputs changed)",
                        self.path)
            return 0
        loop.model.load_state_dict(state["model"])
        for name, param in loop.model.named_parameters():
            param.requires_grad_(state["requires_grad"][name])
        loop.optimiser.load_state_dict(state["optimiser"])
        loop.scheduler.load_state_dict(state["scheduler"])
        loop.generator.set_state(state["generator"].cpu())
        loop.history[:] = state["history"]
        loop.running[:] = state["running"]
        if self.load_extra_state:
            self.load_extra_state(state["extra"])
        loop.completed = int(state["step"])
        log.info("resuming from %s after step %d", self.path, loop.completed)
        return loop.completed

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _run_steps(first: int, steps: int, desc: str, loop: TrainingLoop, render: Callable[..., Any], rays: RayBatches,
               batch_rays: int, use_bf16: bool, device_type: str, loss_reduction: str,
               extra_loss: Callable[[], torch.Tensor] | None, on_step: Callable[[int], None] | None,
               log_every: int, resume: Resume | None) -> None:
    optimiser, scheduler, history, running = loop.optimiser, loop.scheduler, loop.history, loop.running
    with tqdm(range(first, steps + 1), desc=desc, unit="step", mininterval=2.0, leave=False,
              initial=first - 1, total=steps) as bar:
        for step in bar:
            s, t, x, y, target = rays.sample(batch_rays)
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=use_bf16):
                colour, _ = render(s, t, x, y, perturb=True, generator=rays.generator)
            squared = (colour.float() - target) ** 2
            mse = squared.mean()
            loss = squared.sum() if loss_reduction == "sum" else mse
            if extra_loss is not None:
                loss = loss + extra_loss()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            if on_step is not None:
                on_step(step)
            running.append(float(mse.detach()))
            if step % log_every == 0 or step == steps:
                mean_mse = float(np.mean(running))
                running.clear()
                record = {"step": step, "loss": float(loss.detach()), "mse": mean_mse, "psnr": mse_to_psnr(mean_mse)}
                history.append(record)
                bar.set_postfix(psnr=f"{record['psnr']:.2f}dB")
                log.info("%s step %d/%d  train PSNR %.2f dB  loss %.4g", desc, step, steps, record["psnr"],
                         record["loss"])
            loop.completed = step
            if resume is not None and ((step % resume.every == 0 and step < steps) or _STOP.requested):
                resume.save(loop, step)
            if _STOP.requested:
                _STOP.requested = False
                log.info("%s stopped after step %d%s", desc, step, f"; state saved to {resume.path}" if resume else "")
                raise KeyboardInterrupt


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def count_params(model: torch.nn.Module) -> int:
    """Parameters of the field (the network that is transmitted), camera excluded."""
    return sum(p.numel() for p in model.field.parameters())
