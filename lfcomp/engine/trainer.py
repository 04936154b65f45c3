"""The training engine: one Adam loop over random ray batches that every training stage runs.

A stage supplies its parameters, its optimisation settings (``Optimisation``) and its own loss
terms and per-step updates (e.g. ADMM's augmented term and Z/U updates); the ``Trainer`` owns the
optimiser, the exponential learning-rate decay to ``lr_final_ratio × lr`` (paper §3.1), the
periodic and on-SIGTERM resume state (``Resume``) and the stop request (``request_stop``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from lfcomp.engine.device import resolve_precision
from lfcomp.engine.rays import RayBatches
from lfcomp.engine.resume import Resume, TrainingLoop

__all__ = ["Optimisation", "Trainer", "mse_to_psnr", "request_stop"]

log = logging.getLogger("lfcomp")

Render = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def mse_to_psnr(mse: float) -> float:
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


@dataclass(frozen=True)
class Optimisation:
    """How a stage optimises: steps, learning rate and its decay, batch size, logging, precision.

    ``loss_reduction="sum"`` uses the paper's ``‖c' − c_gt‖²`` (sum over the batch), the scale that
    ADMM's ρ is relative to; ``"mean"`` the MSE.
    """

    steps: int
    lr: float
    lr_final_ratio: float
    batch_rays: int
    log_every: int = 100
    precision: str = "fp32"  # fp32 | bf16 (autocast) | auto (``resolve_precision``)
    loss_reduction: str = "mean"


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


class Trainer:
    """Adam over random ray batches of ``rays`` for one stage.

    ``params`` are the parameters (or parameter groups) the stage trains. ``extra_loss()`` is
    added to the colour loss every step, ``after_step(step)`` runs after each update, and
    ``render`` replaces ``model`` as the renderer (quantisation renders through a shared trainable
    codebook). With ``resume``, the loop saves its complete state periodically and on a stop
    request, and continues from a saved state instead of starting over.
    """

    def __init__(self, model: torch.nn.Module, rays: RayBatches, params: Iterable[torch.nn.Parameter] | list[dict],
                 optimisation: Optimisation, desc: str, resume: Resume | None = None) -> None:
        self.model, self.rays, self.optimisation, self.desc, self.resume = model, rays, optimisation, desc, resume
        self.optimiser = torch.optim.Adam(params, lr=optimisation.lr, fused=True)
        gamma = optimisation.lr_final_ratio ** (1.0 / max(optimisation.steps, 1))
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimiser, gamma)

    def run(self, extra_loss: Callable[[], torch.Tensor] | None = None,
            after_step: Callable[[int], None] | None = None, render: Render | None = None,
            status: Callable[[], dict[str, float]] | None = None) -> list[dict[str, float]]:
        """Train for the configured steps (or what is left of them); returns the curve [{step, loss, mse, psnr}].

        ``status()`` adds a stage's own figures (e.g. the rate in bpp) to the progress bar, the log
        and the curve."""
        self.model.train()
        loop = TrainingLoop(self.model, self.optimiser, self.scheduler, self.rays.generator, [], [])
        first = self.resume.restore(loop) + 1 if self.resume else 1
        precision = resolve_precision(self.optimisation.precision, self.rays.colours.device)
        _STOP.active = True
        started = time.perf_counter()
        try:
            self._steps(first, loop, render or self.model, precision == "bf16", extra_loss, after_step, status)
        finally:
            _STOP.active = False
        steps, seconds = self.optimisation.steps - first + 1, time.perf_counter() - started
        log.info("%s: %d steps in %.1f s (%.1f ms/step, %s)", self.desc, steps, seconds, 1e3 * seconds / max(steps, 1),
                 precision)
        return loop.history

    def _steps(self, first: int, loop: TrainingLoop, render: Render, use_bf16: bool,
               extra_loss: Callable[[], torch.Tensor] | None, after_step: Callable[[int], None] | None,
               status: Callable[[], dict[str, float]] | None) -> None:
        opt, rays, resume = self.optimisation, self.rays, self.resume
        steps, history, running = opt.steps, loop.history, loop.running
        device_type = rays.colours.device.type
        with tqdm(range(first, steps + 1), desc=self.desc, unit="step", mininterval=2.0, leave=False,
                  initial=first - 1, total=steps) as bar:
            for step in bar:
                s, t, x, y, target = rays.sample(opt.batch_rays)
                with torch.autocast(device_type, dtype=torch.bfloat16, enabled=use_bf16):
                    colour, _ = render(s, t, x, y, perturb=True, generator=rays.generator)
                squared = (colour.float() - target) ** 2
                mse = squared.mean()
                loss = squared.sum() if opt.loss_reduction == "sum" else mse
                if extra_loss is not None:
                    loss = loss + extra_loss()
                self.optimiser.zero_grad(set_to_none=True)
                loss.backward()
                self.optimiser.step()
                self.scheduler.step()
                if after_step is not None:
                    after_step(step)
                running.append(float(mse.detach()))
                if step % opt.log_every == 0 or step == steps:
                    mean_mse = float(np.mean(running))
                    running.clear()
                    record = {"step": step, "loss": float(loss.detach()), "mse": mean_mse,
                              "psnr": mse_to_psnr(mean_mse)}
                    extra = status() if status is not None else {}
                    record.update(extra)
                    history.append(record)
                    bar.set_postfix(psnr=f"{record['psnr']:.2f}dB", **{k: f"{v:.4g}" for k, v in extra.items()})
                    log.info("%s step %d/%d  train PSNR %.2f dB  loss %.4g%s", self.desc, step, steps, record["psnr"],
                             record["loss"], "".join(f"  {k} {v:.4g}" for k, v in extra.items()))
                loop.completed = step
                if resume is not None and ((step % resume.every == 0 and step < steps) or _STOP.requested):
                    resume.save(loop, step)
                if _STOP.requested:
                    _STOP.requested = False
                    log.info("%s stopped after step %d%s", self.desc, step,
                             f"; state saved to {resume.path}" if resume else "")
                    raise KeyboardInterrupt
