"""Stage 9: distortion and rate of a decoded light field against its reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lfcomp.artifacts import atomic_output
from lfcomp.errors import LfcompError
from lfcomp.evaluation.metrics import bits_per_pixel, distortion_metrics, finite_or_none
from lfcomp.io.lightfield import read_lightfield


def evaluate_lightfield(reference: str | Path, decoded: str | Path, bitstream: str | Path | None = None,
                        model: str | Path | None = None, scene: str | None = None) -> dict[str, Any]:
    """Per-view and mean PSNR (RGB and Y); with a bitstream also bytes, bits and bpp; with the
    quantized checkpoint also the rate point and every stage's PSNR and size (Table 2). ``scene``
    is recorded for the reports, which otherwise take it from the directory layout."""
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
        from lfcomp.engine.checkpoint import load_checkpoint  # torch only when a model is given

        ckpt = load_checkpoint(model, ("quantize",))
        spec = ckpt["spec"]
        stages = ckpt.get("stages", {})
        base = stages.get("nerf", {}).get("params")
        metrics["rate_point"] = {"rank": ckpt.get("rank"), "centroids": ckpt["quantized"]["centroids"]}
        metrics["params"] = stages.get("quantize", {}).get("params")
        holdout = [tuple(map(int, p)) for p in ckpt.get("holdout_views", [])]
        if holdout:
            rgb, y = np.array(metrics["psnr_rgb_views"], float), np.array(metrics["psnr_y_views"], float)
            metrics["holdout"] = {"views": [list(p) for p in holdout],
                                  "psnr_rgb": finite_or_none(float(np.mean([rgb[p] for p in holdout]))),
                                  "psnr_y": finite_or_none(float(np.mean([y[p] for p in holdout])))}
        metrics["stages"] = {
            name: {"psnr_rgb": r.get("psnr_rgb"), "params": r.get("params"),
                   "size_percent": None if not base else round(100.0 * stage_bits(name, r, metrics) / (32 * base), 3),
                   "eval_views": len(r.get("views", []))}
            for name, r in stages.items()}
    if spec is not None:
        metrics["model_kind"] = spec["kind"]
    return metrics


def stage_bits(stage: str, report: dict[str, Any], metrics: dict[str, Any]) -> float:
    """Storage of a stage's model: 32-bit floats before quantization, the bitstream after it."""
    if stage == "quantize" and "bits" in metrics:
        return float(metrics["bits"])
    return 32.0 * float(report.get("stored_params", report.get("params", 0)))


def write_metrics(metrics: dict[str, Any], out: str | Path) -> None:
    with atomic_output(out) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1) + "\n")
