"""The trivial floors of a scene (its views sent as one image): computed at ingest, carried into
metrics and stage reports, warned about and marked in the tables and figures."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import make_synthetic_lightfield

from lfcomp.anchors.video import anchor, anchor_label
from lfcomp.evaluation.evaluate import evaluate_lightfield, write_metrics
from lfcomp.evaluation.floors import FLOORS, below_floors, floor_summary, floor_views, trivial_floors
from lfcomp.evaluation.metrics import per_view_psnr
from lfcomp.evaluation.report import build_report
from lfcomp.evaluation.summary import summarize
from lfcomp.io.lightfield import LightField, ingest_to_zarr, read_lightfield, write_lightfield

ROOT = Path(__file__).resolve().parents[1]


def test_floors_are_the_psnr_of_one_image_sent_to_every_view() -> None:
    views = make_synthetic_lightfield(3, 3, 24, 24)
    floors = trivial_floors(views)
    assert set(floors) == set(FLOORS)
    rgb, _ = per_view_psnr(views, np.broadcast_to(views[1, 1], views.shape))
    assert floors["centre_view"]["psnr_rgb_views"][1][1] is None  # the centre view itself: identical
    assert floors["centre_view"]["psnr_rgb"] == pytest.approx(np.mean(np.delete(rgb.ravel(), 4)), abs=1e-4)
    mean = np.rint(views.reshape(-1, 24, 24, 3).mean(axis=0)).astype(np.uint8)
    assert (floor_views(views)["mean_image"][2, 0] == mean).all()
    assert 10 < floors["mean_image"]["psnr_rgb"] < 60
    assert below_floors(floors["mean_image"]["psnr_rgb"] - 0.01, floors)[-1:] == ["mean_image"]
    assert below_floors(100.0, floors) == [] and below_floors(None, floors) == []
    only_centre = floor_summary(floors, [(0, 0)])
    assert only_centre["centre_view"]["psnr_rgb"] == pytest.approx(rgb[0, 0], abs=1e-3)


def test_ingest_stores_the_floors_and_evaluate_reports_and_warns(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    lf = ingest_to_zarr(ROOT / "data" / "cotton128", tmp_path / "lf.zarr", views=(3, 3), crop=(32, 32))
    stored = read_lightfield(tmp_path / "lf.zarr").attrs["floors"]
    assert stored == json.loads(json.dumps(trivial_floors(lf.views)))
    good = LightField(lf.views.copy(), {})
    bad = LightField(np.clip(lf.views.astype(int) + 40, 0, 255).astype(np.uint8), {})  # far below both
    write_lightfield(good, tmp_path / "good.zarr")
    write_lightfield(bad, tmp_path / "bad.zarr")
    assert evaluate_lightfield(tmp_path / "lf.zarr", tmp_path / "good.zarr")["below_floors"] == []
    with caplog.at_level(logging.WARNING, logger="lfcomp"):
        metrics = evaluate_lightfield(tmp_path / "lf.zarr", tmp_path / "bad.zarr")
    assert metrics["below_floors"] == ["centre_view", "mean_image"]
    assert metrics["floors"]["centre_view"]["psnr_rgb"] == stored["centre_view"]["psnr_rgb"]
    assert "below the floor of the centre view sent to every view" in caplog.text


def test_centre_anchor_codes_one_view_and_copies_it(tmp_path: Path) -> None:
    views = make_synthetic_lightfield(3, 3, 24, 24)
    write_lightfield(LightField(views, {}), tmp_path / "lf.zarr")
    centre = anchor(tmp_path / "lf.zarr", tmp_path / "centre", codec="hevc", chroma="444", qp=22, scan="centre")
    full = anchor(tmp_path / "lf.zarr", tmp_path / "full", codec="hevc", chroma="444", qp=22)
    decoded = read_lightfield(tmp_path / "centre" / "decoded.zarr").views
    assert (decoded == decoded[1, 1]).all()  # every view is the decoded centre view
    assert centre["anchor"] == anchor_label("hevc", "444", "centre") == "centre_hevc444"
    assert centre["bytes"] < full["bytes"] / 2
    assert centre["psnr_rgb"] < full["psnr_rgb"]  # one view for all is worse than coding them all


def test_tables_mark_points_and_stages_below_a_floor(tmp_path: Path) -> None:
    lf = ingest_to_zarr(ROOT / "data" / "cotton128", tmp_path / "lf.zarr", views=(3, 3), crop=(32, 32))
    paths = []
    for name, offset in (("r4", 0), ("r8", 40)):
        decoded = tmp_path / f"{name}.zarr"
        write_lightfield(LightField(np.clip(lf.views.astype(int) + offset, 0, 255).astype(np.uint8), {}), decoded)
        bitstream = tmp_path / f"{name}.lfc"
        bitstream.write_bytes(b"x" * 100)
        metrics = evaluate_lightfield(tmp_path / "lf.zarr", decoded, bitstream, scene="cotton")
        metrics["rate_point"] = {"rank": int(name[1:]), "centroids": 16}
        metrics["stages"] = {"nerf": {"psnr_rgb": 20.0, "params": 100, "below_floors": ["centre_view"]}}
        path = tmp_path / f"results/cotton/nerf/{name}/n16/metrics.json"
        write_metrics(metrics, path)
        paths.append(path)
    summarize(paths, tmp_path / "summary.csv", tmp_path / "summary.md")
    text = (tmp_path / "summary.md").read_text()
    assert "Floors: the centre view sent to every view:" in text
    assert text.count("†") >= 3  # the bad rate point, and the NeRF-org stage of both
    assert "below_floors" in (tmp_path / "summary.csv").read_text().splitlines()[0]
    build_report(paths, tmp_path / "report")
    stages = (tmp_path / "report" / "stages.md").read_text()
    assert "20.00dB†" in stages.replace(" ", "") and "Floors:" in stages
