"""Calibration from the data: the disparity range per angular axis, estimated at ingest from the
views, starts the NeRF camera of a light field that has no parameters.cfg."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_synthetic_lightfield

from lfcomp.codecs.qdlr.train import ESTIMATED, camera_band, initial_camera_for
from lfcomp.config import load_preset
from lfcomp.io.calibration import estimate_disparity_ranges, estimated_range
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
    h, v = estimate["horizontal"], estimate["vertical"]
    assert estimated_range(estimate) == ([min(h[0], v[0]), max(h[1], v[1])], "")
    single_row = estimate_disparity_ranges(views[2:3])
    assert single_row["vertical"] is None and single_row["horizontal"] is not None


def test_flipped_axis_is_noted() -> None:
    _, note = estimated_range({"horizontal": [0.4, 1.0], "vertical": [-1.0, -0.4]})
    assert "flipped" in note
    assert estimated_range({"horizontal": [0.4, 1.0], "vertical": [0.3, 1.1]}) == ([0.3, 1.1], "")
    assert estimated_range(None) == (None, "") and estimated_range({"horizontal": ["x", 1]}) == (None, "")


def test_ingest_records_the_estimate_and_the_camera_starts_from_it() -> None:
    lf = ingest(ROOT / "data" / "cotton128", views=(5, 5))
    estimate = lf.attrs["calibration"]
    truth = lf.attrs["camera"]["disparity_range"]  # parameters.cfg: −1.6..1.5 at 512², the crop sees part of it
    assert truth[0] - 0.2 <= estimate["horizontal"][0] <= estimate["horizontal"][1] <= truth[1] + 0.2
    cfg = load_preset("quick")
    _, origin = initial_camera_for(lf, cfg.camera)
    assert origin.startswith("light field metadata")  # parameters.cfg wins
    del lf.attrs["camera"]
    values, origin = initial_camera_for(lf, cfg.camera)
    assert origin.startswith(ESTIMATED)
    lf.attrs.pop("calibration")
    assert initial_camera_for(LightField(lf.views, lf.attrs), cfg.camera)[1].startswith("config")


def test_camera_band_keeps_the_estimate() -> None:
    cfg = load_preset("smoke")
    values = {"focal": 100.0, "baseline": 0.01, "kappa": 0.3}
    model = SceneModel(make_spec(cfg.model, (3, 3), (16, 16), cfg.camera.near, cfg.camera.far, 100.0), values)
    keep = camera_band(model, values, cfg.camera)
    model.camera.baseline.data.fill_(1.0)  # as if training had drifted far from the estimate
    model.camera.kappa.data.fill_(-5.0)
    keep()
    assert float(model.camera.baseline) == pytest.approx(0.02)
    half = 0.5 * (1 / cfg.camera.near - 1 / cfg.camera.far)
    assert float(model.camera.kappa) == pytest.approx(0.3 - half)
