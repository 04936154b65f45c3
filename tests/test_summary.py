"""lfcomp.evaluation.summary: rate-point tables from metrics.json files."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from lfcomp.codecs import registry
from lfcomp.codecs.registry import QDLR, RateParameter
from lfcomp.errors import LfcompError
from lfcomp.evaluation.summary import TARGET_NOTE, summarize, summary_columns

COLUMNS = ["scene", "model", "rank", "centroids", "lmbda", "bytes", "target_bpp", "bpp", "psnr_rgb", "psnr_y", "params",
           "size_pct",
           "psnr_nerf", "psnr_lowrank", "psnr_distill", "psnr_quantize",
           "params_nerf", "params_lowrank", "params_distill", "params_quantize",
           "floor_centre_view", "floor_mean_image", "below_floors", "grid_u", "grid_v", "height", "width", "metrics"]


def write_metrics(root: Path, scene: str, rank: int, centroids: int, *, bpp: float, psnr: float,
                  stages: bool = True, model: str = "nerf", **extra) -> Path:
    """A metrics.json in the workflow layout ``{scene}/{model}/r/n/`` (no ``model_kind`` unless given)."""
    path = root / "results" / scene / model / f"r{rank}" / f"n{centroids}" / "metrics.json"
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
    assert list(rows[0]) == COLUMNS == summary_columns()
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
    assert {r["target_bpp"] for r in rows} == {""}  # no targets: the column is there, empty

    md = out_md.read_text()
    assert md.startswith("# Rate points of cotton\n")
    assert "## cotton (3x3 views of 32x32)" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 3  # header and one row per rate point
    assert table[1].startswith("| 10 | 32 | 58 | 0.05000 | 30.00 | 31.00 | 1032 | 10.3% | 40.00 / 38.50 / 38.25 / 30.00 |")
    assert "Mean over scenes" not in md
    assert "target bpp" not in md and TARGET_NOTE not in md


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
    assert row["scene"] == tmp_path.name and row["model"] == "nerf"  # the first kind of the default codec
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
    assert problem in info.value.problem and "\n" not in str(info.value)
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


def _tables(md: str, heading: str) -> list[str]:
    """The table rows (header included) right under ``heading``."""
    block = md.split(heading + "\n", 1)[1].split("\n#", 1)[0]
    return [line for line in block.splitlines() if line.startswith("| ")]


def test_layout_without_model_kind_key_gives_the_model_directory(tmp_path):
    path = write_metrics(tmp_path, "cotton", 10, 32, bpp=0.05, psnr=30.0)
    summarize([path], tmp_path / "s.csv", tmp_path / "s.md")
    row = read_csv(tmp_path / "s.csv")[0]
    assert (row["scene"], row["model"], row["rank"], row["centroids"]) == ("cotton", "nerf", "10", "32")
    assert "### NeRF (qdlr-nerf)" in (tmp_path / "s.md").read_text()


def test_the_layout_without_a_model_directory_is_no_longer_read(tmp_path):
    # results/{scene}/r/n/ (before model kinds): no scene or rate point is taken from the path.
    path = write_metrics(tmp_path, "cotton", 10, 32, bpp=0.05, psnr=30.0, model="")
    data = json.loads(path.read_text())
    del data["rate_point"]
    path.write_text(json.dumps(data))
    summarize([path], tmp_path / "s.csv", tmp_path / "s.md")
    row = read_csv(tmp_path / "s.csv")[0]
    assert (row["scene"], row["rank"], row["centroids"]) == ("n32", "", "")


def test_nerf_and_nelf_at_one_rate_point_get_separate_rows_and_tables(tmp_path):
    paths = [
        write_metrics(tmp_path, "cotton", 10, 32, bpp=0.05, psnr=30.0, model="nerf", model_kind="nerf"),
        write_metrics(tmp_path, "cotton", 10, 32, bpp=0.04, psnr=29.0, model="nelf", model_kind="nelf"),
        write_metrics(tmp_path, "cotton", 22, 256, bpp=0.2, psnr=33.0, model="nerf", model_kind="nerf"),
    ]
    summarize(paths, tmp_path / "s.csv", tmp_path / "s.md")
    rows = read_csv(tmp_path / "s.csv")
    # The scene is the directory above the model's, not the model's; nerf first, each by bpp.
    assert [(r["scene"], r["model"], r["rank"], r["centroids"], r["bpp"]) for r in rows] == [
        ("cotton", "nerf", "10", "32", "0.05"), ("cotton", "nerf", "22", "256", "0.2"),
        ("cotton", "nelf", "10", "32", "0.04")]

    md = (tmp_path / "s.md").read_text()
    assert md.startswith("# Rate points of cotton\n") and md.count("## cotton (3x3 views of 32x32)") == 1
    assert md.index("### NeRF (qdlr-nerf)") < md.index("### NeLF (qdlr-nelf)")
    nerf, nelf = _tables(md, "### NeRF (qdlr-nerf)"), _tables(md, "### NeLF (qdlr-nelf)")
    assert len(nerf) == 1 + 2 and len(nelf) == 1 + 1
    assert "size vs NeRF-org | PSNR NeRF-org / LR-NeRF / DLR-NeRF / QDLR-NeRF (dB) |" in nerf[0]
    assert "size vs NeLF-org | PSNR NeLF-org / LR-NeLF / DLR-NeLF / QDLR-NeLF (dB) |" in nelf[0]
    assert nelf[1].startswith("| 10 | 32 | 46 | 0.04000 | 29.00 | 30.00 | 1032 |")
    assert nerf[1].startswith("| 10 | 32 | 58 | 0.05000 | 30.00 | 31.00 | 1032 |")


def test_model_and_scene_from_the_new_layout_or_the_metrics(tmp_path):
    # No model_kind, scene or rate_point keys: all from {scene}/{model}/r/n.
    bare = write_metrics(tmp_path, "dino", 70, 256, bpp=0.1, psnr=30.0, stages=False, model="nelf")
    data = json.loads(bare.read_text())
    del data["rate_point"]
    bare.write_text(json.dumps(data))
    # The metrics' own scene and model_kind win over the path.
    keyed = write_metrics(tmp_path, "dir_name", 70, 256, bpp=0.1, psnr=30.0, model="nerf", model_kind="nelf")
    keyed.write_text(json.dumps({**json.loads(keyed.read_text()), "scene": "Fountain"}))
    summarize([bare, keyed], tmp_path / "s.csv", tmp_path / "s.md")
    rows = read_csv(tmp_path / "s.csv")
    assert [(r["scene"], r["model"], r["rank"], r["centroids"]) for r in rows] == [
        ("Fountain", "nelf", "70", "256"), ("dino", "nelf", "70", "256")]


def test_means_over_scenes_are_per_model(tmp_path):
    paths = [
        write_metrics(tmp_path, "boxes", 40, 256, bpp=0.1, psnr=30.0, model="nerf", model_kind="nerf"),
        write_metrics(tmp_path, "dino", 40, 256, bpp=0.3, psnr=34.0, model="nerf", model_kind="nerf"),
        write_metrics(tmp_path, "boxes", 40, 256, bpp=0.2, psnr=28.0, model="nelf", model_kind="nelf"),
        write_metrics(tmp_path, "dino", 40, 256, bpp=0.4, psnr=32.0, model="nelf", model_kind="nelf"),
    ]
    summarize(paths, tmp_path / "all.csv", tmp_path / "all.md")
    assert len(read_csv(tmp_path / "all.csv")) == 4
    means = (tmp_path / "all.md").read_text().split("## Mean over scenes")[1]
    nerf, nelf = _tables(means, "### NeRF (qdlr-nerf)"), _tables(means, "### NeLF (qdlr-nelf)")
    assert nerf[1:] == ["| 40 | 256 | 2 | 230 | 0.20000 | 32.00 | 33.00 |"]
    assert nelf[1:] == ["| 40 | 256 | 2 | 346 | 0.30000 | 30.00 | 31.00 |"]


def test_same_scene_codec_and_rate_point_twice_is_an_error(tmp_path):
    nerf = write_metrics(tmp_path, "cotton", 10, 32, bpp=0.05, psnr=30.0, model="nerf", model_kind="nerf")
    again = write_metrics(tmp_path / "rerun", "elsewhere", 10, 32, bpp=0.05, psnr=30.0)
    again.write_text(json.dumps({**json.loads(again.read_text()), "scene": "cotton"}))  # the metrics' scene wins
    with pytest.raises(LfcompError, match=r"same scene, codec and rate point .*\(cotton, qdlr-nerf, r10-n32\)") as info:
        summarize([nerf, again], tmp_path / "s.csv", tmp_path / "s.md")
    assert info.value.where == str(again) and "\n" not in str(info.value)
    assert not (tmp_path / "s.csv").exists()


def test_anchors_are_left_to_the_report(tmp_path):
    nerf = write_metrics(tmp_path, "cotton", 10, 32, bpp=0.05, psnr=30.0)
    hevc = tmp_path / "results" / "cotton" / "hevc444" / "qp32" / "metrics.json"
    hevc.parent.mkdir(parents=True)
    hevc.write_text(json.dumps({"psnr_rgb": 30.0, "psnr_y": 31.0, "bytes": 50, "bpp": 0.04, "anchor": "hevc444",
                                "codec": "hevc", "qp": 32}))
    with pytest.raises(LfcompError, match="an anchor's metrics .*lfcomp report") as info:
        summarize([nerf, hevc], tmp_path / "s.csv", tmp_path / "s.md")
    assert info.value.where == str(hevc)
    assert not (tmp_path / "s.csv").exists()


# A second codec as the registry would have it: no model kinds, one rate parameter, no report stages.
LATENT = dataclasses.replace(QDLR, name="latent", description="a learned-latent codec (a stand-in)", model_kinds=(),
                             rate_parameters=(RateParameter("lmbda", "l", float, "rate-distortion trade-off"),),
                             stages=(), markers={})


def test_a_second_registered_codec_gets_its_own_rows_and_table(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.CODECS, "latent", LATENT)
    nerf = write_metrics(tmp_path, "cotton", 10, 32, bpp=0.05, psnr=30.0, model_kind="nerf")
    latent = []
    for lmbda, bpp, psnr in [(0.01, 0.03, 29.0), (0.001, 0.08, 31.0)]:
        path = tmp_path / "results" / "cotton" / "latent" / f"l{lmbda}" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"psnr_rgb": psnr, "psnr_y": psnr + 1, "bytes": round(bpp * 9 * 1024 / 8),
                                    "bpp": bpp, "grid": [3, 3], "size": [32, 32], "codec": "latent",
                                    "rate_point": {"lmbda": lmbda}}))
        latent.append(path)
    summarize([*latent, nerf], tmp_path / "s.csv", tmp_path / "s.md")
    rows = read_csv(tmp_path / "s.csv")
    assert list(rows[0]) == COLUMNS
    assert [(r["model"], r["rank"], r["lmbda"], r["bpp"]) for r in rows] == [
        ("nerf", "10", "", "0.05"), ("latent", "", "0.01", "0.03"), ("latent", "", "0.001", "0.08")]
    md = (tmp_path / "s.md").read_text()
    assert md.index("### NeRF (qdlr-nerf)") < md.index("### latent\n")
    assert _tables(md, "### latent") == [
        "| lmbda | bytes | bpp | PSNR RGB (dB) | PSNR Y (dB) | params |",
        "| 0.01 | 35 | 0.03000 | 29.00 | 30.00 | – |", "| 0.001 | 92 | 0.08000 | 31.00 | 32.00 | – |"]


def test_targets_are_a_column_before_bpp_where_a_codec_has_them(tmp_path):
    paths = [
        write_metrics(tmp_path, "cotton", 10, 32, bpp=0.055, psnr=30.0, model_kind="nerf", target_bpp=0.05,
                      target_error=0.1),
        write_metrics(tmp_path, "cotton", 22, 256, bpp=0.2, psnr=33.0, model_kind="nerf"),  # made without a target
        write_metrics(tmp_path, "cotton", 10, 32, bpp=0.04, psnr=29.0, model="nelf", model_kind="nelf"),
        write_metrics(tmp_path, "dino", 10, 32, bpp=0.045, psnr=31.0, model_kind="nerf", target_bpp=0.05),
        write_metrics(tmp_path, "dino", 22, 256, bpp=0.19, psnr=34.0, model_kind="nerf", target_bpp=0.2),
    ]
    summarize(paths, tmp_path / "s.csv", tmp_path / "s.md")
    rows = read_csv(tmp_path / "s.csv")
    assert list(rows[0]) == COLUMNS
    assert [(r["scene"], r["model"], r["target_bpp"], r["bpp"]) for r in rows] == [
        ("cotton", "nerf", "0.05", "0.055"), ("cotton", "nerf", "", "0.2"), ("cotton", "nelf", "", "0.04"),
        ("dino", "nerf", "0.05", "0.045"), ("dino", "nerf", "0.2", "0.19")]

    md = (tmp_path / "s.md").read_text()
    assert TARGET_NOTE in md.split("\n## ")[0]  # said once, in the explanation above the tables
    cotton = md.split("## cotton")[1].split("\n## ")[0]
    nerf, nelf = _tables(cotton, "### NeRF (qdlr-nerf)"), _tables(cotton, "### NeLF (qdlr-nelf)")
    assert nerf[0].startswith("| rank | centroids | bytes | target bpp | bpp | PSNR RGB (dB) |")
    assert nerf[1].startswith("| 10 | 32 | 63 | 0.05000 | 0.05500 | 30.00 |")
    assert nerf[2].startswith("| 22 | 256 | 230 | – | 0.20000 | 33.00 |")  # no target: a dash
    assert nelf[0].startswith("| rank | centroids | bytes | bpp |")  # no point of this table has a target
    assert nelf[1].startswith("| 10 | 32 | 46 | 0.04000 | 29.00 |")
    means = _tables(md.split("## Mean over scenes")[1], "### NeRF (qdlr-nerf)")
    assert means == ["| rank | centroids | scenes | bytes | target bpp | bpp | PSNR RGB (dB) | PSNR Y (dB) |",
                     "| 10 | 32 | 2 | 58 | 0.05000 | 0.05000 | 30.50 | 31.50 |",
                     "| 22 | 256 | 2 | 224 | – | 0.19500 | 33.50 | 34.50 |"]  # a target on one scene only: no mean


@pytest.mark.parametrize("target", [0, -0.05, float("inf"), float("nan"), "0.05", True, [0.05]])
def test_a_malformed_target_names_the_file(tmp_path, target):
    good = write_metrics(tmp_path, "cotton", 22, 256, bpp=0.2, psnr=33.0, target_bpp=0.2)
    bad = write_metrics(tmp_path, "cotton", 10, 32, bpp=0.05, psnr=30.0, target_bpp=target)
    with pytest.raises(LfcompError, match="malformed metrics: target_bpp = ") as info:
        summarize([good, bad], tmp_path / "s.csv", tmp_path / "s.md")
    assert info.value.where == str(bad) and "\n" not in str(info.value)
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "s.md").exists()
