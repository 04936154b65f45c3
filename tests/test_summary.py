"""lfcomp.summary: rate-point tables from metrics.json files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lfcomp.errors import LfcompError
from lfcomp.summary import COLUMNS, summarize


def write_metrics(root: Path, scene: str, rank: int, centroids: int, *, bpp: float, psnr: float,
                  stages: bool = True, **extra) -> Path:
    path = root / "results" / scene / f"r{rank}" / f"n{centroids}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {
        "psnr_rgb": psnr, "psnr_y": psnr + 1.0,
        "psnr_rgb_views": [[psnr] * 3] * 3, "psnr_y_views": [[psnr + 1.0] * 3] * 3,
        "bytes": round(bpp * 3 * 3 * 32 * 32 / 8), "bits": round(bpp * 3 * 3 * 32 * 32),
        "bpp": bpp, "grid": [3, 3], "size": [32, 32], "params": rank * 100 + centroids,
        "rate_point": {"rank": rank, "centroids": centroids},
    }
    if stages:
        metrics["stages"] = {
            "nerf": {"psnr_rgb": 40.0, "params": 10000},
            "lowrank": {"psnr_rgb": 38.5, "params": 5000},
            "distill": {"psnr_rgb": 38.25, "params": 1600},
            "quantize": {"psnr_rgb": psnr, "params": rank * 100 + centroids},
        }
    metrics.update(extra)
    path.write_text(json.dumps(metrics))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_one_scene_rows_sorted_by_rate(tmp_path):
    paths = [
        write_metrics(tmp_path, "cotton", 10, 32, bpp=0.05, psnr=30.0),
        write_metrics(tmp_path, "cotton", 22, 256, bpp=0.2, psnr=33.0),
        write_metrics(tmp_path, "cotton", 10, 256, bpp=0.1, psnr=31.5),
    ]
    out_csv, out_md = tmp_path / "s" / "summary.csv", tmp_path / "s" / "summary.md"
    summarize(paths, out_csv, out_md)

    rows = read_csv(out_csv)
    assert list(rows[0]) == COLUMNS
    assert [(r["rank"], r["centroids"]) for r in rows] == [("10", "32"), ("10", "256"), ("22", "256")]
    first = rows[0]
    assert first["scene"] == "cotton"
    assert float(first["bpp"]) == 0.05 and float(first["psnr_rgb"]) == 30.0 and float(first["psnr_y"]) == 31.0
    assert int(first["bytes"]) == round(0.05 * 9 * 1024 / 8)
    assert int(first["params"]) == 1032
    assert float(first["size_pct"]) == pytest.approx(10.32)
    assert float(first["psnr_nerf"]) == 40.0 and float(first["psnr_quantize"]) == 30.0
    assert (first["grid_u"], first["grid_v"], first["height"], first["width"]) == ("3", "3", "32", "32")
    assert first["metrics"] == str(paths[0])

    md = out_md.read_text()
    assert md.startswith("# Rate points of cotton\n")
    assert "## cotton (3x3 views of 32x32)" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 3  # header and one row per rate point
    assert table[1].startswith("| 10 | 32 | 58 | 0.05000 | 30.00 | 31.00 | 1032 | 10.3% | 40.00 / 38.50 / 38.25 / 30.00 |")
    assert "Mean over scenes" not in md


def test_several_scenes_get_a_table_each_and_the_means(tmp_path):
    paths = [
        write_metrics(tmp_path, "boxes", 40, 256, bpp=0.1, psnr=30.0),
        write_metrics(tmp_path, "Fountain_&_Vincent_2", 40, 256, bpp=0.3, psnr=34.0),
        write_metrics(tmp_path, "boxes", 40, 32, bpp=0.02, psnr=28.0),
    ]
    summarize(paths, tmp_path / "all.csv", tmp_path / "all.md")
    rows = read_csv(tmp_path / "all.csv")
    assert [(r["scene"], r["centroids"]) for r in rows] == [
        ("Fountain_&_Vincent_2", "256"), ("boxes", "32"), ("boxes", "256")]
    md = (tmp_path / "all.md").read_text()
    assert md.startswith("# Rate points of 2 scenes\n")
    assert "## boxes" in md and "## Fountain_&_Vincent_2" in md
    means = md.split("## Mean over scenes")[1]
    assert "| 40 | 32 | 1 | " in means
    assert "| 40 | 256 | 2 | " in means and "| 0.20000 | 32.00 | 33.00 |" in means


def test_missing_stages_and_layout_fall_back(tmp_path):
    # A metrics file outside the workflow layout, without stages or rate point: columns left empty.
    path = tmp_path / "elsewhere.json"
    path.write_text(json.dumps({"psnr_rgb": 25.0, "psnr_y": 26.0, "bytes": 100, "bpp": 0.01}))
    summarize([path], tmp_path / "s.csv", tmp_path / "s.md")
    row = read_csv(tmp_path / "s.csv")[0]
    assert row["scene"] == tmp_path.name
    assert row["rank"] == "" and row["psnr_nerf"] == "" and row["size_pct"] == ""
    assert "| – | – | 100 | 0.01000 | 25.00 | 26.00 | – | – | – |" in (tmp_path / "s.md").read_text()


def test_rate_point_from_path_when_metrics_lack_it(tmp_path):
    path = write_metrics(tmp_path, "dino", 70, 256, bpp=0.1, psnr=30.0, stages=False)
    data = json.loads(path.read_text())
    del data["rate_point"]
    path.write_text(json.dumps(data))
    summarize([path], tmp_path / "s.csv", tmp_path / "s.md")
    row = read_csv(tmp_path / "s.csv")[0]
    assert (row["scene"], row["rank"], row["centroids"]) == ("dino", "70", "256")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read metrics"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"psnr_rgb": 1.0, "bytes": 3}', "metrics lack psnr_y, bpp"),
    ],
)
def test_bad_metrics_name_the_file(tmp_path, content, problem):
    path = tmp_path / "metrics.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LfcompError) as info:
        summarize([path], tmp_path / "s.csv", tmp_path / "s.md")
    assert info.value.where == str(path)
    assert problem in info.value.problem
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "s.md").exists()


def test_no_metrics_is_an_error(tmp_path):
    with pytest.raises(LfcompError):
        summarize([], tmp_path / "s.csv", tmp_path / "s.md")


def test_params_and_size_from_the_stages_when_given(tmp_path):
    # `params` missing at the top level: the quantized model's count; the stage's own size figure wins.
    path = write_metrics(tmp_path, "cotton", 10, 32, bpp=0.05, psnr=30.0)
    data = json.loads(path.read_text())
    del data["params"]
    data["stages"]["quantize"]["size_percent"] = 3.3
    path.write_text(json.dumps(data))
    summarize([path], tmp_path / "s.csv", tmp_path / "s.md")
    row = read_csv(tmp_path / "s.csv")[0]
    assert row["params"] == "1032"
    assert float(row["size_pct"]) == 3.3
    assert "| 1032 | 3.3% |" in (tmp_path / "s.md").read_text()
