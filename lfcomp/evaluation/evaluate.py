"""Stage 9: distortion and rate of a decoded light field against its reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lfcomp.artifacts import atomic_output
from lfcomp.codecs.targets import check_target_bpp
from lfcomp.errors import LfcompError
from lfcomp.evaluation.floors import floor_fields
from lfcomp.evaluation.metrics import bits_per_pixel, distortion_metrics, finite_or_none
from lfcomp.io.lightfield import read_lightfield


def evaluate_lightfield(reference: str | Path, decoded: str | Path, bitstream: str | Path | None = None,
                        model: str | Path | None = None, scene: str | None = None,
                        target_bpp: float | None = None) -> dict[str, Any]:
    """Per-view and mean PSNR (RGB and Y); with a bitstream also bytes, bits and bpp; with the
    codec's final checkpoint also the rate point and the codec's own figures (QDLR: every stage's
    PSNR and size, Table 2). ``scene`` is recorded for the reports, which otherwise take it from
    the directory layout. ``target_bpp``, the rate the point was made for, is recorded as given
    (never read from the checkpoint: the caller is its one source), with a bitstream also the
    relative miss ``target_error`` = achieved bpp / target − 1."""
    if target_bpp is not None:
        check_target_bpp(target_bpp, "target_bpp")
    ref, dec = read_lightfield(reference), read_lightfield(decoded)
    if ref.views.shape != dec.views.shape:
        raise LfcompError(decoded, f"shape {dec.views.shape} differs from the reference {ref.views.shape}")
    metrics: dict[str, Any] = {"reference": str(reference), "decoded": str(decoded),
                               **distortion_metrics(ref.views, dec.views)}
    if scene is not None:
        metrics["scene"] = scene
    spec = dec.attrs.get("spec")
    if bitstream is not None:
        path = Path(bitstream)
        if not path.is_file():
            raise LfcompError(path, "no such bitstream file")
        num_bytes = path.stat().st_size
        metrics.update({"bitstream": str(path), "bytes": num_bytes, "bits": 8 * num_bytes,
                        "bpp": bits_per_pixel(num_bytes, ref.grid, ref.size)})
    if model is not None:
        spec = rate_point_metrics(model, metrics)
    if target_bpp is not None:  # after the checkpoint's figures: the argument is the one source
        metrics["target_bpp"] = float(target_bpp)
        if "bpp" in metrics:
            metrics["target_error"] = round(metrics["bpp"] / target_bpp - 1.0, 4)
    if spec is not None and "kind" in spec:
        metrics["model_kind"] = spec["kind"]
    metrics.update(floor_fields(ref.attrs, ref.views, metrics["psnr_rgb"], warn_as=str(decoded)))
    return metrics


def rate_point_metrics(model: str | Path, metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Add the rate point and the codec's own figures from the codec's final checkpoint ``model``
    (the codec is the one whose final stage wrote it); returns the model's spec, if it has one."""
    import importlib

    from lfcomp.codecs.registry import CODECS
    from lfcomp.engine.checkpoint import load_checkpoint  # torch only when a model is given

    finals = {codec.final_stage: codec for codec in CODECS.values()}
    ckpt = load_checkpoint(model, tuple(finals))
    made_for = ckpt.get("spec") or ckpt["report"]["geometry"]  # a scene model's spec, or the latent geometry
    if list(made_for["grid"]) != list(metrics["grid"]) or list(made_for["size"]) != list(metrics["size"]):
        raise LfcompError(model, "was trained on {}x{} views of {}x{} px, but the reference has {}x{} views of {}x{} px"
                          .format(*made_for["grid"], *made_for["size"], *metrics["grid"], *metrics["size"]))
    return importlib.import_module(f"{finals[ckpt['stage']].package}.report").rate_point_metrics(ckpt, metrics)


def holdout_metrics(metrics: dict[str, Any], holdout: list[tuple[int, int]]) -> dict[str, Any]:
    """PSNR of the views held out of training, from the per-view figures of ``metrics``."""
    rgb, y = np.array(metrics["psnr_rgb_views"], float), np.array(metrics["psnr_y_views"], float)
    return {"views": [list(p) for p in holdout],
            "psnr_rgb": finite_or_none(float(np.mean([rgb[p] for p in holdout]))),
            "psnr_y": finite_or_none(float(np.mean([y[p] for p in holdout])))}


def write_metrics(metrics: dict[str, Any], out: str | Path) -> None:
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1) + "\n")
