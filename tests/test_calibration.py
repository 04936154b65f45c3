"""Calibration from the data: the disparity range per angular axis, estimated at ingest from the
views, starts the NeRF camera of a light field that has no parameters.cfg."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from conftest import make_synthetic_lightfield

from lfcomp.codecs.qdlr.train import ESTIMATED, camera_band, initial_camera_for
from lfcomp.config import load_preset
from lfcomp.errors import LfcompError
from lfcomp.io.calibration import disparity_estimate, estimate_disparity_ranges
from lfcomp.io.lightfield import LightField, ingest
from lfcomp.models.scene import SceneModel, make_spec

ROOT = Path(__file__).resolve().parents[1]


def test_estimate_finds_the_synthetic_disparities_per_axis() -> None:
    views = make_synthetic_lightfield(5, 5, 48, 48)  # background −0.75, square +1.25 px per view step
    estimate = estimate_disparity_ranges(views)
    for axis in ("horizontal", "vertical"):
        low, high = estimate[axis]
        assert low == pytest.approx(-0.75, abs=0.15) and high == pytest.approx(1.25, abs=0.15), estimate
    flipped = estimate_disparity_ranges(views[::-1])  # rows in the other order: vertical disparities negate
    assert flipped["vertical"][0] == pytest.approx(-1.25, abs=0.15) and flipped["vertical"][1] == pytest.approx(0.75, abs=0.15)
    assert flipped["horizontal"] == estimate["horizontal"]
    assert estimate["vertical_step"] == pytest.approx(1.0, abs=0.05)
    assert flipped["vertical_step"] == pytest.approx(-1.0, abs=0.05)  # the maps agree with the sign reversed
    h, v = estimate["horizontal"], estimate["vertical"]
    joined = disparity_estimate(estimate)
    assert joined.disparity_range == pytest.approx([min(h[0], v[0] / joined.vertical_step),
                                                    max(h[1], v[1] / joined.vertical_step)], abs=1e-4)
    back = disparity_estimate(flipped)  # in horizontal units, the flipped axis's range is the same one
    assert back.vertical_step < 0 and "other way" in back.note and not back.doubtful
    assert back.disparity_range == pytest.approx(joined.disparity_range, abs=0.15)
    single_row = estimate_disparity_ranges(views[2:3])
    assert single_row["vertical"] is None and single_row["horizontal"] is not None
    assert "vertical_step" not in single_row


def test_refined_sweep_resolves_subpixel_parallax() -> None:
    """A plenoptic-like capture: ±0.15 px per view step is under one coarse candidate step (0.1 px);
    the refined sweep still separates the two depths."""
    views = make_synthetic_lightfield(5, 5, 48, 48, disparities=(-0.1, 0.15))
    estimate = estimate_disparity_ranges(views)
    for axis in ("horizontal", "vertical"):
        low, high = estimate[axis]
        assert low == pytest.approx(-0.1, abs=0.04) and high == pytest.approx(0.15, abs=0.04), estimate
    assert estimate["vertical_step"] == pytest.approx(1.0, abs=0.1)


def test_vertical_step_from_a_gantry_with_unequal_steps() -> None:
    """Rows twice as far apart as columns: the vertical disparities double, and so does the step."""
    views = make_synthetic_lightfield(5, 5, 48, 48, disparities=(-0.3, 0.5), vertical_scale=2.0)
    estimate = estimate_disparity_ranges(views)
    assert estimate["vertical_step"] == pytest.approx(2.0, abs=0.2)
    joined = disparity_estimate(estimate)
    assert joined.disparity_range == pytest.approx([-0.3, 0.5], abs=0.1) and f"{joined.vertical_step:g}" in joined.note


def test_axes_without_a_vertical_step_are_noted() -> None:
    """A calibration written before the vertical step (or from uncorrelated maps): equal steps, and a
    note when the ranges look flipped."""
    estimate = disparity_estimate({"horizontal": [0.4, 1.0], "vertical": [-1.0, -0.4]})
    assert "flipped" in estimate.note and estimate.doubtful and estimate.vertical_step == 1.0
    estimate = disparity_estimate({"horizontal": [0.4, 1.0], "vertical": [0.3, 1.1]})
    assert estimate.disparity_range == [0.3, 1.1] and estimate.note == ""
    assert disparity_estimate(None) is None and disparity_estimate({"horizontal": ["x", 1]}) is None
    for hostile in (0.0, float("nan"), 100.0, "x", True):  # unusable steps count as none
        assert disparity_estimate({"horizontal": [0.4, 1.0], "vertical_step": hostile}).vertical_step == 1.0


def test_ingest_records_the_estimate_and_the_camera_starts_from_it() -> None:
    lf = ingest(ROOT / "data" / "cotton128", views=(5, 5))
    estimate = lf.attrs["calibration"]
    truth = lf.attrs["camera"]["disparity_range"]  # parameters.cfg: −1.6..1.5 at 512², the crop sees part of it
    assert truth[0] - 0.2 <= estimate["horizontal"][0] <= estimate["horizontal"][1] <= truth[1] + 0.2
    cfg = load_preset("quick")
    assert initial_camera_for(lf, cfg.camera).origin.startswith("light field metadata")  # parameters.cfg wins
    del lf.attrs["camera"]
    start = initial_camera_for(lf, cfg.camera)
    assert start.origin.startswith(ESTIMATED) and start.vertical_step == pytest.approx(1.0, abs=0.1)
    lf.attrs.pop("calibration")
    assert initial_camera_for(LightField(lf.views, lf.attrs), cfg.camera).origin.startswith("config")


def test_camera_band_keeps_the_estimate() -> None:
    cfg = load_preset("smoke")
    values = {"focal": 100.0, "baseline": 0.01, "kappa": 0.3}
    model = SceneModel(make_spec(cfg.model, (3, 3), (16, 16), cfg.camera.near, cfg.camera.far, 100.0), values)
    keep = camera_band(model, values, cfg.camera)
    model.camera.baseline.data.fill_(1.0)  # as if training had drifted far from the estimate
    model.camera.kappa.data.fill_(-5.0)
    keep()
    assert float(model.camera.baseline) == pytest.approx(0.01 * cfg.camera.baseline_band)
    half = 0.5 * (1 / cfg.camera.near - 1 / cfg.camera.far)
    assert float(model.camera.kappa) == pytest.approx(0.3 - half)
    model.camera.baseline.data.fill_(-1.0)
    keep()
    assert float(model.camera.baseline) == pytest.approx(0.01 / cfg.camera.baseline_band)
    wide = camera_band(model, values, replace(cfg.camera, baseline_band=2.0))
    model.camera.baseline.data.fill_(1.0)
    wide()
    assert float(model.camera.baseline) == pytest.approx(0.02)
    with pytest.raises(LfcompError, match="baseline_band"):
        camera_band(model, values, replace(cfg.camera, baseline_band=0.5))
