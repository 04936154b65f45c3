"""Summary tables (rd.csv, bd_psnr.csv/.md, stages.csv/.md) from metrics.json files in the workflow layout."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lfcomp.codecs import registry
from lfcomp.codecs.registry import QDLR, RateParameter
from lfcomp.errors import LfcompError
from lfcomp.evaluation.bd import bd_psnr, bd_rate
from lfcomp.evaluation.report import build_report, rd_columns
from lfcomp.evaluation.results import RatePoint, load_point, load_points
from lfcomp.evaluation.summary import summarize

PIXELS = 9 * 9 * 128 * 128


def _write(path: Path, metrics: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))
    return path


def _common(num_bytes: int, psnr: float) -> dict:
    return {"grid": [9, 9], "size": [128, 128], "psnr_rgb": psnr, "psnr_y": psnr + 1.0,
            "psnr_rgb_views": [[psnr] * 9] * 9, "psnr_y_views": [[psnr + 1.0] * 9] * 9,
            "bytes": num_bytes, "bits": 8 * num_bytes, "bpp": 8 * num_bytes / PIXELS}


def _anchor(root: Path, scene: str, label: str, qp: int, num_bytes: int, psnr: float) -> Path:
    codec, chroma = label[:-3], label[-3:]
    metrics = {**_common(num_bytes, psnr), "anchor": label, "codec": codec, "chroma": chroma, "qp": qp,
               "scan": "serpentine", "encode_seconds": 0.5, "decode_seconds": 0.1}
    return _write(root / scene / label / f"qp{qp}" / "metrics.json", metrics)


def _neural(root: Path, scene: str, rank: int, centroids: int, num_bytes: int, psnr: float,
            stage_psnrs=(42.0, 39.0, 38.5, 38.0), sizes=(100.0, 50.0, 16.7, 3.3), model: str = "nerf") -> Path:
    """The neural codec's metrics in the workflow layout ``{scene}/{model}/r/n/``; no ``scene`` key,
    so the scene comes from the path."""
    stages = {name: {"psnr_rgb": p, "params": int(1000 * s), "size_percent": s, "eval_views": 9}
              for name, p, s in zip(("nerf", "lowrank", "distill", "quantize"), stage_psnrs, sizes)}
    metrics = {**_common(num_bytes, psnr), "rate_point": {"rank": rank, "centroids": centroids},
               "stages": stages, "model_kind": model}
    return _write(root / scene / model / f"r{rank}" / f"n{centroids}" / "metrics.json", metrics)


HEVC444 = [(22, 18000, 40.0), (27, 10000, 37.5), (32, 5600, 35.0), (37, 3200, 32.5), (42, 2000, 30.0)]
HEVC420 = [(22, 15000, 37.0), (27, 8500, 35.2), (32, 4800, 33.3), (37, 2800, 31.2), (42, 1800, 29.0)]
NEURAL = [(8, 32, 2300, 33.5), (16, 64, 4200, 35.8), (24, 128, 7000, 37.6), (32, 256, 11000, 38.9)]


@pytest.fixture
def results(tmp_path) -> list[Path]:
    root = tmp_path / "results"
    paths = []
    for scene in ("alpha", "beta"):
        paths += [_anchor(root, scene, "hevc444", qp, b, p) for qp, b, p in HEVC444]
        paths += [_anchor(root, scene, "hevc420", qp, b, p) for qp, b, p in HEVC420]
    paths += [_neural(root, "alpha", r, n, b, p) for r, n, b, p in NEURAL]
    paths.append(_neural(root, "beta", 16, 64, 4200, 35.8, stage_psnrs=(44.0, 41.0, 40.5, 40.0)))  # one point
    # An H.264 anchor on alpha whose curve lies wholly above the HEVC curves' rates.
    paths += [_anchor(root, "alpha", "h264444", qp, b, p) for qp, b, p in [(12, 90000, 45.0), (17, 60000, 43.0),
                                                                            (20, 40000, 41.5), (22, 30000, 40.5)]]
    return paths


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_rd_csv_has_one_row_per_scene_codec_and_rate_point(results, tmp_path):
    paths = build_report(results, tmp_path / "summary")
    rows = _csv(paths["rd.csv"])
    assert len(rows) == len(results) == 2 * 5 * 2 + 4 + 1 + 4
    row = next(r for r in rows if r["scene"] == "alpha" and r["codec"] == "hevc444" and r["qp"] == "32")
    assert (row["rate_point"], row["bytes"], row["bits"], float(row["bpp"]), float(row["psnr_rgb"]),
            float(row["psnr_y"]), row["encode_seconds"], row["decode_seconds"]) == \
        ("qp32", "5600", "44800", pytest.approx(44800 / PIXELS), 35.0, 36.0, "0.5", "0.1")
    neural = [r for r in rows if r["codec"] == "qdlr-nerf" and r["scene"] == "alpha"]
    assert [r["rate_point"] for r in neural] == ["r8-n32", "r16-n64", "r24-n128", "r32-n256"]  # by bpp
    assert neural[0]["encode_seconds"] == "" and neural[0]["rank"] == "8" and neural[0]["centroids"] == "32"
    assert [r["codec"] for r in rows if r["scene"] == "alpha"][-1] == "qdlr-nerf"  # ours last, as in Table 1
    assert list(rows[0]) == rd_columns() == [
        "scene", "codec", "rate_point", "qp", "rank", "centroids", "lmbda", "bytes", "bits", "target_bpp", "bpp",
        "psnr_rgb", "psnr_y", "encode_seconds", "decode_seconds", "scan", "metrics"]  # every codec's rate parameters
    assert {r["target_bpp"] for r in rows} == {""}  # no point was made for a target


def test_rd_csv_gives_the_target_beside_the_achieved_bpp(results, tmp_path):
    targeted = _neural(tmp_path / "results", "beta", 24, 128, 7000, 37.6)
    _write(targeted, {**json.loads(targeted.read_text()), "target_bpp": 0.04, "target_error": 0.0549})
    rows = _csv(build_report([*results, targeted], tmp_path / "summary")["rd.csv"])
    beta = {r["rate_point"]: r for r in rows if r["scene"] == "beta" and r["codec"] == "qdlr-nerf"}
    assert beta["r24-n128"]["target_bpp"] == "0.04"
    assert float(beta["r24-n128"]["bpp"]) == pytest.approx(8 * 7000 / PIXELS)
    assert beta["r16-n64"]["target_bpp"] == ""
    assert {r["target_bpp"] for r in rows if r["codec"] != "qdlr-nerf"} == {""}  # anchors have no target


def test_bd_csv_matches_lfcomp_bd_and_marks_what_cannot_be_computed(results, tmp_path):
    paths = build_report(results, tmp_path / "summary")
    rows = _csv(paths["bd_psnr.csv"])
    find = {(r["scene"], r["anchor"], r["codec"], r["distortion"]): r for r in rows}
    alpha = find[("alpha", "hevc444", "qdlr-nerf", "psnr_rgb")]
    rate = lambda points: [8 * b / PIXELS for *_, b, _ in points]  # noqa: E731
    psnr = lambda points: [p for *_, p in points]  # noqa: E731
    expected = bd_psnr(rate(HEVC444), psnr(HEVC444), rate(NEURAL), psnr(NEURAL), "cubic")
    assert float(alpha["bd_psnr_cubic"]) == pytest.approx(expected.value, abs=1e-4)
    assert float(alpha["bd_psnr_pchip"]) == pytest.approx(
        bd_psnr(rate(HEVC444), psnr(HEVC444), rate(NEURAL), psnr(NEURAL), "pchip").value, abs=1e-4)
    assert float(alpha["bd_rate_cubic"]) == pytest.approx(
        bd_rate(rate(HEVC444), psnr(HEVC444), rate(NEURAL), psnr(NEURAL), "cubic").value, abs=1e-4)
    assert (alpha["anchor_points"], alpha["test_points"], alpha["note"]) == ("5", "4", "")
    # A scene with one rate point still gets its row: no number, and the reason.
    beta = find[("beta", "hevc444", "qdlr-nerf", "psnr_rgb")]
    assert beta["bd_psnr_cubic"] == beta["bd_psnr_pchip"] == beta["bd_rate_cubic"] == ""
    assert beta["test_points"] == "1" and "test has 1 rate point" in beta["note"]
    # The average is over the scenes with a value, and says so.
    average = find[("average", "hevc444", "qdlr-nerf", "psnr_rgb")]
    assert float(average["bd_psnr_cubic"]) == pytest.approx(float(alpha["bd_psnr_cubic"]), abs=1e-4)
    assert average["scenes"] == "1" and average["note"] == "mean of 1 of 2 scenes"
    # Curves that do not overlap: no number, the reason in the note.
    h264 = find[("alpha", "hevc444", "h264444", "psnr_rgb")]
    assert h264["bd_psnr_cubic"] == "" and "do not overlap in rate" in h264["note"]
    # Every codec against both anchors, in RGB and Y.
    assert ("alpha", "hevc420", "hevc444", "psnr_y") in find and ("alpha", "hevc444", "hevc444", "psnr_rgb") not in find


def test_bd_markdown_is_table_1_style(results, tmp_path):
    text = build_report(results, tmp_path / "summary")["bd_psnr.md"].read_text()
    assert "## BD-PSNR (dB) against hevc444, RGB PSNR" in text and "## BD-rate (%) against hevc420, Y PSNR" in text
    table = text.split("## BD-PSNR (dB) against hevc444, RGB PSNR")[1].split("##")[0]
    lines = [line for line in table.splitlines() if line.startswith("|")]
    assert lines[0] == "| LFs | hevc420 | h264444 | qdlr-nerf |"
    alpha = next(line for line in lines if line.startswith("| alpha "))
    assert "no overlap" in alpha and "**" in alpha  # the best of the row in bold
    beta = next(line for line in lines if line.startswith("| beta "))
    assert "n/c: too few points" in beta
    assert any(line.startswith("| Average ") for line in lines)
    assert "beta, qdlr-nerf: BD-PSNR cubic: test has 1 rate point" in table


def test_stages_tables_average_over_scenes(results, tmp_path):
    paths = build_report(results, tmp_path / "summary")
    rows = _csv(paths["stages.csv"])
    average = {r["stage"]: r for r in rows if r["scene"] == "average" and r["rank"] == "16"}
    assert float(average["nerf"]["psnr_rgb"]) == pytest.approx(43.0) and average["nerf"]["scenes"] == "2"
    assert float(average["quantize"]["psnr_rgb"]) == pytest.approx(39.0)
    assert float(average["quantize"]["size_percent"]) == pytest.approx(3.3)
    assert {r["scenes"] for r in rows if r["scene"] == "average" and r["rank"] == "8"} == {"1"}
    text = paths["stages.md"].read_text()
    assert "| Metrics | NeRF-org | LR-NeRF | DLR-NeRF | QDLR-NeRF |" in text
    block = text.split("rank 16, 64 centroids (2 scenes)")[1]
    assert "| PSNR | 43.00dB | 40.00dB | 39.50dB | 39.00dB |" in block
    assert "| Size | 100.0% | 50.0% | 16.7% | 3.3% |" in block


def test_anchors_only_still_give_all_tables(results, tmp_path):
    anchors = [p for p in results if "hevc" in str(p)]
    paths = build_report(anchors, tmp_path / "summary")
    assert "No neural-codec metrics" in paths["stages.md"].read_text()
    assert len(_csv(paths["stages.csv"])) == 0
    assert {r["codec"] for r in _csv(paths["bd_psnr.csv"])} == {"hevc444", "hevc420"}


def test_bad_inputs_are_clean_errors(results, tmp_path):
    broken = tmp_path / "broken" / "metrics.json"
    broken.parent.mkdir()
    broken.write_text("{not json")
    partial = _write(tmp_path / "x" / "hevc444" / "qp1" / "metrics.json", {"anchor": "hevc444", "bytes": 3})
    unknown = _write(tmp_path / "y" / "metrics.json", {**_common(100, 30.0), "codec": "av2"})
    cases = [([broken], broken, "not valid JSON"),
             ([partial], partial, "metrics lack psnr_rgb, psnr_y, bpp"),
             ([results[0], results[0]], results[0], "same scene, codec and rate point as"),
             ([tmp_path / "missing" / "metrics.json"], tmp_path / "missing" / "metrics.json", "cannot read metrics"),
             ([unknown], unknown, "unknown codec 'av2'"),
             ([], "metrics", "no metrics.json given")]
    for paths, where, problem in cases:
        with pytest.raises(LfcompError, match=problem) as info:
            load_points(paths)
        assert info.value.where == str(where) and "\n" not in str(info.value)  # one line, naming the file
        with pytest.raises(LfcompError, match=problem):
            build_report(paths, tmp_path / "summary")
    assert not (tmp_path / "summary").exists()


# --------------------------------------------------------------------------- two neural kinds

NELF = [(8, 32, 2000, 32.0), (16, 64, 3900, 34.9), (24, 128, 6500, 36.6), (32, 256, 10000, 38.0)]


@pytest.fixture
def two_kinds(tmp_path) -> list[Path]:
    """One scene in the new layout: nerf and nelf at the same (rank, centroids) pairs, and hevc444."""
    root = tmp_path / "results"
    paths = [_anchor(root, "alpha", "hevc444", qp, b, p) for qp, b, p in HEVC444]
    paths += [_neural(root, "alpha", r, n, b, p, model="nerf") for r, n, b, p in NEURAL]
    paths += [_neural(root, "alpha", r, n, b, p, stage_psnrs=(41.0, 37.0, 36.5, p), sizes=(100.0, 40.0, 12.5, 2.5),
                      model="nelf") for r, n, b, p in NELF]
    return paths


@pytest.mark.parametrize(("relative", "extra", "codec", "rate_point"), [
    ("results/alpha/nelf/r8/n32/metrics.json", {}, "qdlr-nelf", "r8-n32"),
    ("results/alpha/nerf/r8/n32/metrics.json", {}, "qdlr-nerf", "r8-n32"),
    ("results/alpha/nerf/r8/n32/metrics.json", {"model_kind": "nelf"}, "qdlr-nelf", "r8-n32"),
    ("results/alpha/nelf/r8/n32/metrics.json", {"codec": "qdlr", "rate_point": {"rank": 9, "centroids": 64}},
     "qdlr-nelf", "r9-n64"),
    ("results/alpha/hevc444/qp22/metrics.json", {"anchor": "hevc444", "codec": "hevc", "qp": 22}, "hevc444", "qp22"),
])
def test_scene_codec_and_rate_point_from_the_metrics_else_the_layout(tmp_path, relative, extra, codec, rate_point):
    path = _write(tmp_path / relative, {**_common(100, 30.0), **extra})
    point = load_point(path)
    assert (point.scene, point.codec, point.rate_point) == ("alpha", codec, rate_point)
    assert (point.entry is None) == codec.startswith("hevc") and point.path == path
    keyed = _write(tmp_path / "other" / relative, {**_common(100, 30.0), **extra, "scene": "Fountain_&_Vincent_2"})
    assert load_point(keyed).scene == "Fountain_&_Vincent_2"


def test_the_layout_without_a_model_directory_is_no_longer_read(tmp_path):
    path = _write(tmp_path / "results" / "alpha" / "r8" / "n32" / "metrics.json", _common(100, 30.0))
    point = load_point(path)
    assert (point.scene, point.codec, point.rate, point.rate_point) == (
        "n32", "qdlr-nerf", {"rank": None, "centroids": None}, "n32")


def test_two_neural_kinds_give_separate_rd_rows(two_kinds, tmp_path):
    rows = _csv(build_report(two_kinds, tmp_path / "summary")["rd.csv"])
    assert len(rows) == 5 + 4 + 4 and {r["scene"] for r in rows} == {"alpha"}  # not "nerf" / "nelf"
    assert [r["codec"] for r in rows] == ["hevc444"] * 5 + ["qdlr-nerf"] * 4 + ["qdlr-nelf"] * 4
    nerf = {r["rate_point"]: r for r in rows if r["codec"] == "qdlr-nerf"}
    nelf = {r["rate_point"]: r for r in rows if r["codec"] == "qdlr-nelf"}
    assert list(nerf) == list(nelf) == ["r8-n32", "r16-n64", "r24-n128", "r32-n256"]
    assert (nerf["r8-n32"]["bytes"], nelf["r8-n32"]["bytes"]) == ("2300", "2000")
    assert (float(nerf["r8-n32"]["psnr_rgb"]), float(nelf["r8-n32"]["psnr_rgb"])) == (33.5, 32.0)
    assert "/nelf/r8/n32/" in nelf["r8-n32"]["metrics"] and "/nerf/r8/n32/" in nerf["r8-n32"]["metrics"]


def test_two_neural_kinds_give_separate_bd_rows(two_kinds, tmp_path):
    paths = build_report(two_kinds, tmp_path / "summary")
    find = {(r["scene"], r["anchor"], r["codec"], r["distortion"]): r for r in _csv(paths["bd_psnr.csv"])}
    rate = lambda points: [8 * b / PIXELS for *_, b, _ in points]  # noqa: E731
    psnr = lambda points: [p for *_, p in points]  # noqa: E731
    for codec, curve in (("qdlr-nerf", NEURAL), ("qdlr-nelf", NELF)):
        row = find[("alpha", "hevc444", codec, "psnr_rgb")]
        expected = bd_psnr(rate(HEVC444), psnr(HEVC444), rate(curve), psnr(curve), "cubic").value
        assert float(row["bd_psnr_cubic"]) == pytest.approx(expected, abs=1e-4)
        assert (row["anchor_points"], row["test_points"]) == ("5", "4")
        assert float(find[("average", "hevc444", codec, "psnr_rgb")]["bd_psnr_cubic"]) == \
            pytest.approx(expected, abs=1e-4)
        assert ("alpha", "hevc444", codec, "psnr_y") in find
    assert find[("alpha", "hevc444", "qdlr-nerf", "psnr_rgb")]["bd_psnr_cubic"] != \
        find[("alpha", "hevc444", "qdlr-nelf", "psnr_rgb")]["bd_psnr_cubic"]
    text = paths["bd_psnr.md"].read_text()
    table = text.split("## BD-PSNR (dB) against hevc444, RGB PSNR")[1].split("##")[0]
    assert "| LFs | qdlr-nerf | qdlr-nelf |" in table
    alpha = next(line for line in table.splitlines() if line.startswith("| alpha "))
    assert alpha.count("**") == 2 and "–" not in alpha  # a number for each, the better in bold


def test_two_neural_kinds_get_their_own_stage_titles(two_kinds, tmp_path):
    paths = build_report(two_kinds, tmp_path / "summary")
    rows = _csv(paths["stages.csv"])
    titles = {codec: [r["title"] for r in rows if r["codec"] == codec and r["scene"] == "alpha" and r["rank"] == "8"]
              for codec in ("qdlr-nerf", "qdlr-nelf")}
    assert titles == {"qdlr-nerf": ["NeRF-org", "LR-NeRF", "DLR-NeRF", "QDLR-NeRF"],
                      "qdlr-nelf": ["NeLF-org", "LR-NeLF", "DLR-NeLF", "QDLR-NeLF"]}
    average = {r["stage"]: r for r in rows if r["scene"] == "average" and r["codec"] == "qdlr-nelf"
               and r["rank"] == "8"}
    assert float(average["lowrank"]["psnr_rgb"]) == 37.0 and float(average["quantize"]["size_percent"]) == 2.5
    text = paths["stages.md"].read_text()
    nerf = text.split("## qdlr-nerf, rank 8, 32 centroids (1 scene)")[1].split("##")[0]
    nelf = text.split("## qdlr-nelf, rank 8, 32 centroids (1 scene)")[1].split("##")[0]
    assert "| Metrics | NeRF-org | LR-NeRF | DLR-NeRF | QDLR-NeRF |" in nerf
    assert "| PSNR | 42.00dB | 39.00dB | 38.50dB | 38.00dB |" in nerf
    assert "| Metrics | NeLF-org | LR-NeLF | DLR-NeLF | QDLR-NeLF |" in nelf
    assert "| PSNR | 41.00dB | 37.00dB | 36.50dB | 32.00dB |" in nelf
    assert "| Size | 100.0% | 40.0% | 12.5% | 2.5% |" in nelf


def test_duplicates_key_on_scene_codec_and_rate_point(two_kinds, tmp_path):
    nelf = next(p for p in two_kinds if "/nelf/r8/n32/" in str(p))
    with pytest.raises(LfcompError, match=r"same scene, codec and rate point .*\(alpha, qdlr-nelf, r8-n32\)"):
        load_points(two_kinds + [nelf])
    # The same rate point of nerf elsewhere, its scene named by the metrics, collides with it.
    again = _neural(tmp_path / "again" / "results", "other", 8, 32, 2300, 33.5)
    again.write_text(json.dumps({**json.loads(again.read_text()), "scene": "alpha"}))
    with pytest.raises(LfcompError, match=r"\(alpha, qdlr-nerf, r8-n32\)") as info:
        load_points(two_kinds + [again])
    assert info.value.where == str(again)


def test_rate_points_are_typed_and_sorted(two_kinds):
    points = load_points(list(reversed(two_kinds)))
    assert all(isinstance(p, RatePoint) for p in points)
    assert [p.codec for p in points] == ["hevc444"] * 5 + ["qdlr-nerf"] * 4 + ["qdlr-nelf"] * 4
    assert [p.bpp for p in points[:5]] == sorted(p.bpp for p in points[:5])
    nelf = points[-4]
    assert (nelf.kind, nelf.rate, nelf.rate_point, nelf.bytes, nelf.bits) == (
        "nelf", {"rank": 8, "centroids": 32}, "r8-n32", 2000, 16000)
    assert [(s.key, s.title, s.psnr_rgb, s.size_percent) for s in nelf.stages] == [
        ("nerf", "NeLF-org", 41.0, 100.0), ("lowrank", "LR-NeLF", 37.0, 40.0), ("distill", "DLR-NeLF", 36.5, 12.5),
        ("quantize", "QDLR-NeLF", 32.0, 2.5)]
    assert (nelf.grid, nelf.size, nelf.size_percent, nelf.params) == ((9, 9), (128, 128), 2.5, 2500)
    hevc = points[0]
    assert (hevc.entry, hevc.kind, hevc.rate, hevc.scan, hevc.encode_seconds, hevc.stages) == (
        None, None, {"qp": 42}, "serpentine", 0.5, ())


# --------------------------------------------------------------------------- a second registered codec

# A codec as a second registry entry would add it: no model kinds, one rate parameter (l0.01 in
# paths), no report stages; its metrics name it ("codec": "latent").
LATENT = dataclasses.replace(QDLR, name="latent", description="a learned-latent codec (a stand-in)", model_kinds=(),
                             rate_parameters=(RateParameter("lmbda", "l", float, "rate-distortion trade-off"),),
                             stages=(), markers={"latent": "D"})
LATENT_CURVE = [(0.04, 2100, 33.0), (0.02, 3900, 35.5), (0.01, 6600, 37.4), (0.005, 10500, 38.8)]


def _latent(root: Path, scene: str, lmbda: float, num_bytes: int, psnr: float) -> Path:
    metrics = {**_common(num_bytes, psnr), "codec": "latent", "rate_point": {"lmbda": lmbda}}
    return _write(root / scene / "latent" / f"l{lmbda}" / "metrics.json", metrics)


def test_a_second_registered_codec_is_in_every_table(results, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.CODECS, "latent", LATENT)
    latent = [_latent(tmp_path / "results", "alpha", lmbda, b, p) for lmbda, b, p in LATENT_CURVE]
    paths = build_report(results + latent, tmp_path / "summary")

    rows = _csv(paths["rd.csv"])
    assert list(rows[0]) == rd_columns() and "lmbda" in rd_columns()
    mine = [r for r in rows if r["codec"] == "latent"]
    assert [r["rate_point"] for r in mine] == ["l0.04", "l0.02", "l0.01", "l0.005"]  # by bpp
    assert [r["lmbda"] for r in mine] == ["0.04", "0.02", "0.01", "0.005"] and {r["rank"] for r in mine} == {""}
    assert [r["codec"] for r in rows if r["scene"] == "alpha"][-4:] == ["latent"] * 4  # after qdlr-nerf

    find = {(r["scene"], r["anchor"], r["codec"], r["distortion"]): r for r in _csv(paths["bd_psnr.csv"])}
    rate = lambda points: [8 * b / PIXELS for *_, b, _ in points]  # noqa: E731
    psnr = lambda points: [p for *_, p in points]  # noqa: E731
    row = find[("alpha", "hevc444", "latent", "psnr_rgb")]
    expected = bd_psnr(rate(HEVC444), psnr(HEVC444), rate(LATENT_CURVE), psnr(LATENT_CURVE), "cubic").value
    assert float(row["bd_psnr_cubic"]) == pytest.approx(expected, abs=1e-4)
    assert ("average", "hevc420", "latent", "psnr_y") in find
    table = paths["bd_psnr.md"].read_text().split("## BD-PSNR (dB) against hevc444, RGB PSNR")[1].split("##")[0]
    assert "| LFs | hevc420 | h264444 | qdlr-nerf | latent |" in table
    assert "beta, latent" not in table  # it did not run on beta: a dash, no note
    # No report stages: no stage rows, and the stage columns stay QDLR's.
    assert {r["codec"] for r in _csv(paths["stages.csv"])} == {"qdlr-nerf"}
    assert "latent" not in paths["stages.md"].read_text()

    summarize(latent, tmp_path / "s.csv", tmp_path / "s.md")
    summary = _csv(tmp_path / "s.csv")
    assert [(r["model"], r["lmbda"]) for r in summary] == [("latent", "0.04"), ("latent", "0.02"),
                                                          ("latent", "0.01"), ("latent", "0.005")]
    assert "### latent\n\n| lmbda | bytes |" in (tmp_path / "s.md").read_text()


def test_the_tables_import_neither_torch_nor_matplotlib():
    code = ("import sys, lfcomp.evaluation as e, lfcomp.evaluation.plots, lfcomp.evaluation.report, "
            "lfcomp.evaluation.summary; [getattr(e, n) for n in e.__all__]; "
            "print(sorted({'torch', 'matplotlib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
