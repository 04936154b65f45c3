"""What the latent codec adds to a rate point's metrics.json: its name and rate point (λ), the
size of its networks and latents, the decoder's complexity and the held-out views."""

from __future__ import annotations

from typing import Any

from lfcomp.evaluation.evaluate import holdout_metrics

__all__ = ["rate_point_metrics"]


def rate_point_metrics(ckpt: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Fill ``metrics`` from the latent codec's checkpoint (it has no scene-model spec)."""
    report = ckpt["report"]
    metrics["codec"] = "latent"
    metrics["rate_point"] = {"lmbda": ckpt["lmbda"]}
    metrics["params"] = report["network_params"]
    metrics["latents"] = report["latents"]
    metrics["macs_per_pixel"] = report["macs_per_pixel"]
    holdout = [tuple(map(int, p)) for p in ckpt.get("holdout_views", [])]
    if holdout:
        metrics["holdout"] = holdout_metrics(metrics, holdout)
