"""The latent codec at a target bitrate: λ predicted, then searched by trainings from one start.

A λ-trained codec's rate is known only once it is trained. Its size barely depends on the number
of views (the latents are one view's grid plus a disparity grid, the networks ~1.1 KB): on the
quick preset λ = 10⁻³ gives 4663 bytes on cotton (9×9×128²) and 4483 on antinous (5×5×128²), so
its rate is predicted in bits per pixel of ONE view, and its reachable bpp range moves with the
grid (quick: 0.023–0.043 bpp at 9×9, 0.075–0.127 at 5×5 for λ = 10⁻²…10⁻⁶).

1. ``predict_lambda``: the first λ. From the preset's calibration (``CALIBRATION``: a measured
   point and the slope of log rate against log λ), or, when the run warm-starts from the model of
   the next lower target, from that model's own (λ, bpp) with the same slope.
2. ``fit_to_target``: train at λ, measure the real bitstream (``payload.encode_model``, the bytes
   ``latent-encode`` writes) and, while the rate misses the target by more than ``TOLERANCE``,
   train again from the same start (the lower target's model, or from scratch) at a new λ: the
   secant of log bpp against log λ through the last two trials (the calibrated slope after the
   first), bisection on log λ once two trials bracket the target; at most
   ``latent.target_trials`` trainings, λ within ``LAMBDA_RANGE``. A retry that closes less than half
   of the log-rate gap left by the one before, without the trials bracketing the target, ends the
   search (``_stalled``): there the rate has stopped following λ, and on cotton128 no third training
   after such a retry came closer (3 of the 11 trainings of the quick chain). Every trial starts from the same
   model so that trials differ in λ only: continuing from the last trial keeps adding bits whatever
   λ (measured: a retry from a 0.035 bpp trial at 8.5× its λ ended at 0.039 bpp). The trial that
   meets the target best (``RateTarget.best``) is kept. A target beyond what the starting model
   already reached at the end of the λ range is not trained again: that model is the nearest point.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from lfcomp.bitstream.container import encode_payload
from lfcomp.codecs.latent.fit import fit_latent, geometry_for, stage_report
from lfcomp.codecs.latent.model import LatentCodecModel
from lfcomp.codecs.latent.payload import encode_model
from lfcomp.codecs.targets import RateTarget
from lfcomp.config import Config

__all__ = ["CALIBRATION", "LAMBDA_RANGE", "STALL_FRACTION", "RateTrial", "fit_to_target", "predict_lambda"]

log = logging.getLogger("lfcomp")

LAMBDA_RANGE = (1e-7, 1.0)
STALL_FRACTION = 0.5


@dataclass(frozen=True)
class Calibration:
    """A preset's measured rate: ``view_bpp`` (bits per pixel of one view) at ``lmbda``, and
    d log rate / d log λ."""

    lmbda: float
    view_bpp: float
    slope: float


# quick: the warm-start chains λ = 10⁻² … 10⁻⁶ on cotton 9×9×128² and antinous 5×5×128² (4663 and 4483
# bytes at 10⁻³). The slope is that of trainings from one start (from scratch on cotton: 0.0233 bpp
# at λ = 10⁻², 0.0147 at 0.071, −0.23), steeper than along a chain (−0.06 … −0.09), where each λ
# also adds the steps of the ones before. paper and smoke are not calibrated: they start from
# quick's, and the search corrects.
CALIBRATION: dict[str, Calibration] = {
    "quick": Calibration(lmbda=1e-3, view_bpp=2.23, slope=-0.2),
}


@dataclass(frozen=True)
class RateTrial:
    """One training of the search: its λ and the bitstream it gives."""

    lmbda: float
    bytes: int
    bpp: float
    psnr_rgb: float
    steps: int


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _clamp(lmbda: float) -> float:
    """λ within ``LAMBDA_RANGE``, to 3 significant digits (what the tables show)."""
    return float(f"{min(max(lmbda, LAMBDA_RANGE[0]), LAMBDA_RANGE[1]):.3g}")


def predict_lambda(target: RateTarget, views: int, preset: str, known: tuple[float, float] | None = None) -> float:
    """λ expected to give ``target`` on a light field of ``views`` views: through ``known`` (λ, bpp of
    the light field), else the preset's calibration (quick's for a preset without one)."""
    calibration = CALIBRATION.get(preset, CALIBRATION["quick"])
    lmbda, bpp = known or (calibration.lmbda, calibration.view_bpp / views)
    return _clamp(lmbda * (target.bpp / bpp) ** (1 / calibration.slope))


def _sides(trials: list[RateTrial], target: RateTarget) -> tuple[list[RateTrial], list[RateTrial]]:
    """The trials above the target (too many bits: a larger λ) and those at or below it."""
    return [t for t in trials if t.bpp > target.bpp], [t for t in trials if t.bpp <= target.bpp]


def _next_lambda(trials: list[RateTrial], target: RateTarget, slope: float) -> float:
    """Bisection on log λ between the closest trials on each side of the target, else a secant step."""
    above, below = _sides(trials, target)
    if above and below:
        high = max(above, key=lambda t: t.lmbda)
        low = min(below, key=lambda t: t.lmbda)
        return _clamp(math.sqrt(high.lmbda * low.lmbda))
    last = trials[-1]
    if len(trials) >= 2:
        previous = trials[-2]
        if previous.lmbda != last.lmbda and previous.bpp != last.bpp:
            measured = math.log(last.bpp / previous.bpp) / math.log(last.lmbda / previous.lmbda)
            if -5 < measured < -0.01:  # a sane, falling rate curve; else keep the calibrated slope
                slope = measured
    return _clamp(last.lmbda * (target.bpp / last.bpp) ** (1 / slope))


def _stalled(trials: list[RateTrial], target: RateTarget) -> bool:
    """The last retry closed less than ``STALL_FRACTION`` of the gap (in log rate) that the trial
    before left, and no two trials bracket the target."""
    above, below = _sides(trials, target)
    if len(trials) < 2 or (above and below):
        return False
    before, last = (abs(math.log(t.bpp / target.bpp)) for t in trials[-2:])
    return before - last < STALL_FRACTION * before


def measure_bytes(model: LatentCodecModel, views: np.ndarray, lmbda: float) -> int:
    """Size of the bitstream ``latent-encode`` would write for ``model`` (the model is not changed)."""
    payload, _ = encode_model(copy.deepcopy(model).cpu(), views, lmbda)
    return len(encode_payload(payload))


def _beyond_reach(target: RateTarget, known: tuple[float, float] | None) -> bool:
    """The starting model was trained at an end of the λ range and the target lies past its rate."""
    if known is None:
        return False
    lmbda, bpp = known
    return ((target.bpp > bpp and lmbda <= LAMBDA_RANGE[0] * 1.001)
            or (target.bpp < bpp and lmbda >= LAMBDA_RANGE[1] * 0.999))


def fit_to_target(views: np.ndarray, target: RateTarget, cfg: Config, device: torch.device,
                  init: dict[str, Any] | None = None) -> tuple[LatentCodecModel, dict[str, Any]]:
    """Train the latent codec on ``views`` until its bitstream meets ``target`` (see the module)."""
    calibration = CALIBRATION.get(cfg.preset, CALIBRATION["quick"])
    known = None
    if init is not None and all(_positive(init.get(key)) for key in ("lmbda", "achieved_bpp")):
        known = (float(init["lmbda"]), float(init["achieved_bpp"]))
    U, V, H, W, _ = views.shape
    if _beyond_reach(target, known):
        return _reuse(views, target, cfg, device, init)
    lmbda = predict_lambda(target, U * V, cfg.preset, known)
    trials: list[RateTrial] = []
    states: list[dict[str, torch.Tensor]] = []
    extras_of: list[dict[str, Any]] = []
    for attempt in range(cfg.latent.target_trials):
        log.info("target %.5f bpp (%s): training %d of at most %d at λ=%.3g", target.bpp, target.fit,
                 attempt + 1, cfg.latent.target_trials, lmbda)
        model, extras = fit_latent(views, lmbda, cfg, device, init)
        size = measure_bytes(model, views, lmbda)
        report = extras["report"]
        trials.append(RateTrial(lmbda, size, 8 * size / target.pixels, report["psnr_rgb"], report["steps"]))
        states.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        extras_of.append(extras)
        log.info("λ=%.3g: %d bytes, %.5f bpp (target %.5f, %+.1f %%), PSNR %.2f dB", lmbda, size, trials[-1].bpp,
                 target.bpp, 100 * target.error(size), report["psnr_rgb"])
        if target.met_by(size):
            break
        if _stalled(trials, target):
            log.info("the rate moved %.5f -> %.5f bpp for a target of %.5f: it no longer follows λ, no more "
                     "trainings", trials[-2].bpp, trials[-1].bpp, target.bpp)
            break
        following = _next_lambda(trials, target, calibration.slope)
        if any(math.isclose(following, t.lmbda, rel_tol=1e-3) for t in trials):
            log.info("λ=%.3g was tried already (at the end of the λ range): the target is out of reach", following)
            break
        lmbda = following
    chosen = target.best([t.bytes for t in trials])
    model.load_state_dict(states[chosen])
    return model, _with_target(extras_of[chosen], target, trials, chosen)


def _with_target(extras: dict[str, Any], target: RateTarget, trials: list[RateTrial], chosen: int) -> dict[str, Any]:
    """The stage's extras with the search's record (``target``), the chosen λ and its rate."""
    met = target.met_by(trials[chosen].bytes)
    log.info("target %.5f bpp: kept training %d of %d, λ=%.3g, %.5f bpp (%+.1f %%)%s", target.bpp, chosen + 1,
             len(trials), trials[chosen].lmbda, trials[chosen].bpp, 100 * target.error(trials[chosen].bytes),
             "" if met else " — not within the tolerance: the nearest reached")
    record = {"bpp": target.bpp, "bytes": round(target.bytes), "fit": target.fit, "met": met, "chosen": chosen,
              "trainings": sum(t.steps > 0 for t in trials), "trials": [asdict(t) for t in trials]}
    return extras | {"target": record, "lmbda": trials[chosen].lmbda, "achieved_bpp": trials[chosen].bpp}


def _reuse(views: np.ndarray, target: RateTarget, cfg: Config, device: torch.device,
           init: dict[str, Any]) -> tuple[LatentCodecModel, dict[str, Any]]:
    """The starting model as it is, for a target it cannot get closer to (no training)."""
    U, V, H, W, _ = views.shape
    model = LatentCodecModel(geometry_for((U, V), (H, W), cfg), cfg.latent.arm_hidden)
    model.load_state_dict(init["state_dict"])
    model.to(device)
    lmbda = float(init["lmbda"])
    log.info("target %.5f bpp: beyond the rate the starting model reached at λ=%.3g, the end of the λ range; "
             "kept as it is", target.bpp, lmbda)
    report = stage_report(model, views, cfg, lmbda, 0)
    size = measure_bytes(model, views, lmbda)
    trial = RateTrial(lmbda, size, 8 * size / target.pixels, report["psnr_rgb"], 0)
    return model, _with_target({"report": report, "history": []}, target, [trial], 0)
