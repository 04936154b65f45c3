"""The trivial references a scene model must beat: the PSNR of sending one image to every view.

A light field whose views differ by well under a pixel (a Lytro capture, a downsampled scene) is
already well described by one image, so a model's PSNR means little without these floors:

* ``centre_view``: the centre view, copied to every view (what a codec gets for the rate of one
  image; the ``centre_hevc444`` anchor codes it with HEVC and gives its RD curve);
* ``mean_image``: the mean of all views (8-bit), copied to every view.

They are computed at ingest (``LightField.attrs["floors"]``) and carried into every stage report
and metrics.json; a model below a floor is logged as a warning and marked in the summaries.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from lfcomp.evaluation.metrics import distortion_metrics

__all__ = ["FLOORS", "below_floors", "floor_fields", "floor_summary", "floor_views", "floors_of", "trivial_floors", "warn_below_floors"]

log = logging.getLogger("lfcomp")

FLOORS = {"centre_view": "the centre view sent to every view", "mean_image": "the mean image sent to every view"}


def floor_views(views: np.ndarray) -> dict[str, np.ndarray]:
    """The image each floor sends to every view, as a (U, V, H, W, 3) uint8 light field."""
    U, V = views.shape[:2]
    centre = views[(U - 1) // 2, (V - 1) // 2]
    mean = np.rint(views.reshape(-1, *views.shape[2:]).mean(axis=0, dtype=np.float64)).astype(np.uint8)
    return {"centre_view": np.broadcast_to(centre, views.shape), "mean_image": np.broadcast_to(mean, views.shape)}


def trivial_floors(views: np.ndarray) -> dict[str, dict[str, Any]]:
    """Each floor's PSNR (RGB and Y, mean over views, identical views left out) and per-view RGB PSNR."""
    floors = {}
    for name, copied in floor_views(views).items():
        metrics = distortion_metrics(views, copied)
        floors[name] = {"psnr_rgb": metrics["psnr_rgb"], "psnr_y": metrics["psnr_y"],
                        "psnr_rgb_views": metrics["psnr_rgb_views"]}
    return floors


def floors_of(attrs: dict[str, Any], views: np.ndarray) -> dict[str, dict[str, Any]]:
    """The floors stored at ingest, or computed now for a light field ingested before they were."""
    stored = attrs.get("floors")
    if isinstance(stored, dict) and set(stored) == set(FLOORS) and all(
            isinstance(f, dict) and (f.get("psnr_rgb") is None or type(f.get("psnr_rgb")) in (int, float))
            for f in stored.values()):
        return stored
    return trivial_floors(views)


def below_floors(psnr: float | None, floors: dict[str, dict[str, Any]]) -> list[str]:
    """Names of the floors that ``psnr`` (RGB, dB) does not beat."""
    if psnr is None:
        return []
    return [name for name, floor in floors.items() if floor.get("psnr_rgb") is not None and psnr < floor["psnr_rgb"]]


def warn_below_floors(what: str, psnr: float | None, floors: dict[str, dict[str, Any]]) -> list[str]:
    """Log a warning naming each floor that ``what`` (a stage, a rate point) ends below; returns them."""
    names = below_floors(psnr, floors)
    for name in names:
        log.warning("%s: PSNR %.2f dB is below the floor of %s (%.2f dB)", what, psnr, FLOORS[name],
                    floors[name]["psnr_rgb"])
    return names


def floor_summary(floors: dict[str, dict[str, Any]],
                  positions: list[tuple[int, int]] | None = None) -> dict[str, dict[str, float | None]]:
    """The floors' means (what metrics.json carries); over ``positions`` only, the RGB mean of
    those views (what a stage report evaluated on a subset of the views compares with)."""
    if positions is None:
        return {name: {"psnr_rgb": f["psnr_rgb"], "psnr_y": f["psnr_y"]} for name, f in floors.items()}
    summary = {}
    for name, f in floors.items():
        values = [f["psnr_rgb_views"][u][v] for u, v in positions]
        finite = [x for x in values if x is not None]
        summary[name] = {"psnr_rgb": round(float(np.mean(finite)), 4) if finite else None}
    return summary


def floor_fields(attrs: dict[str, Any], views: np.ndarray, psnr: float | None,
                 warn_as: str | None = None) -> dict[str, Any]:
    """The ``floors`` and ``below_floors`` entries of a metrics.json (every codec and anchor); with
    ``warn_as``, a warning names each floor the rate point does not beat."""
    floors = floors_of(attrs, views)
    below = warn_below_floors(warn_as, psnr, floors) if warn_as else below_floors(psnr, floors)
    return {"floors": floor_summary(floors), "below_floors": below}
