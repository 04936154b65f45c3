"""What QDLR adds to a rate point's metrics.json: its rate point, parameters, held-out views and
every stage's PSNR and size (the paper's Table 2)."""

from __future__ import annotations

from typing import Any

from lfcomp.evaluation.evaluate import holdout_metrics

__all__ = ["rate_point_metrics", "stage_bits"]


def rate_point_metrics(ckpt: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """Fill ``metrics`` from the quantized checkpoint; returns the model's spec."""
    stages = ckpt.get("stages", {})
    base = stages.get("nerf", {}).get("params")
    metrics["rate_point"] = {"rank": ckpt.get("rank"), "centroids": ckpt["quantized"]["centroids"]}
    metrics["params"] = stages.get("quantize", {}).get("params")
    holdout = [tuple(map(int, p)) for p in ckpt.get("holdout_views", [])]
    if holdout:
        metrics["holdout"] = holdout_metrics(metrics, holdout)
    metrics["stages"] = {
        name: {"psnr_rgb": r.get("psnr_rgb"), "params": r.get("params"),
               "size_percent": None if not base else round(100.0 * stage_bits(name, r, metrics) / (32 * base), 3),
               "eval_views": len(r.get("views", []))}
        for name, r in stages.items()}
    return ckpt["spec"]


def stage_bits(stage: str, report: dict[str, Any], metrics: dict[str, Any]) -> float:
    """Storage of a stage's model: 32-bit floats before quantization, the bitstream after it."""
    if stage == "quantize" and "bits" in metrics:
        return float(metrics["bits"])
    return 32.0 * float(report.get("stored_params", report.get("params", 0)))
