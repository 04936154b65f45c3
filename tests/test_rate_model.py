"""Rate points as target bitrates: QDLR's size model against measured bitstreams, the planner, and
the target arithmetic shared by the codecs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lfcomp.bitstream.container import read_bitstream
from lfcomp.codecs.qdlr.rate_model import estimate_size, factored_spec, model_rate_points, plan_rate_points
from lfcomp.codecs.targets import RateTarget, check_target_bpp
from lfcomp.config import load_preset
from lfcomp.errors import LfcompError
from lfcomp.models.spec import check_spec, make_spec

DATA = Path(__file__).parent / "data"
MEASURED = json.loads((DATA / "rate_model" / "measured.json").read_text())


def quick_spec(kind: str = "nerf", grid=(9, 9), size=(128, 128)) -> dict:
    return make_spec(load_preset("quick", kind).model, grid, size, 2.0, 6.0, 1.0)


@pytest.mark.parametrize("stream", MEASURED["streams"], ids=lambda s: s["name"])
def test_predicted_size_of_measured_quick_bitstreams_is_within_one_percent(stream):
    predicted = estimate_size(stream["spec"], stream["rank"], stream["centroids"])
    assert abs(predicted.bytes / stream["bytes"] - 1) <= 0.01, (predicted.bytes, stream["bytes"])
    assert abs(predicted.fixed_bytes - stream["fixed_bytes"]) <= 2  # everything but the Huffman part is exact


@pytest.mark.parametrize("name", ["qdlr-nerf-smoke.lfc", "qdlr-nelf-smoke.lfc"])
def test_predicted_size_of_golden_smoke_streams(name):
    """Tiny smoke networks with N = 8 (below the planner's choices) still within 6 %."""
    payload = read_bitstream(DATA / "golden" / name)
    spec = payload.header["spec"]
    rank = next(iter(spec["factor_ranks"].values()))
    predicted = estimate_size(spec, rank, payload.header["centroids"])
    assert abs(predicted.bytes / (DATA / "golden" / name).stat().st_size - 1) <= 0.06


def test_factored_spec_factorizes_where_it_saves_parameters():
    spec = quick_spec()
    assert factored_spec(spec, 10)["factor_ranks"]  # 64-wide layers: rank 10 saves
    assert factored_spec(spec, 32)["factor_ranks"] == {}  # 32·(64+64) = 64·64: nothing saved
    assert spec["factor_ranks"] == {}  # the input is not changed
    sizes = [estimate_size(spec, rank, 256).bytes for rank in range(1, 32)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert check_spec(factored_spec(spec, 10)).weights == estimate_size(spec, 10, 256).weights


@pytest.mark.parametrize("kind", ["nerf", "nelf"])
@pytest.mark.parametrize("grid", [(9, 9), (5, 5), (4, 7)])
def test_plan_meets_reachable_targets_with_distinct_points(kind, grid):
    spec = quick_spec(kind, grid)
    targets = [0.02, 0.04, 0.07, 0.12]
    plan = plan_rate_points(spec, targets)
    assert [p.target_bpp for p in plan] == targets
    assert len({(p.rank, p.centroids) for p in plan}) == len(plan)
    for point in plan:
        if point.feasible:
            assert abs(point.error) <= 0.1, point
        assert 1 <= point.rank < spec["field"]["width"]


def test_plan_shares_ranks_and_fit_under_stays_below():
    spec = quick_spec()
    closest = plan_rate_points(spec, [0.02, 0.04])
    assert closest[0].rank == closest[1].rank  # one rank, two codebooks: one low-rank and distillation run
    under = plan_rate_points(spec, [0.02, 0.04, 0.07, 0.12], fit="under")
    assert all(p.predicted.bpp <= p.target_bpp for p in under)
    assert all(p.predicted.bpp >= 0.85 * p.target_bpp for p in under)


def test_unreachable_targets_get_the_nearest_end_and_say_so():
    spec = quick_spec(grid=(9, 9), size=(512, 512))  # a small model on large views: at most ~0.009 bpp
    plan = plan_rate_points(spec, [0.05, 0.1])
    assert not any(p.feasible for p in plan)
    assert {(p.rank, p.centroids) for p in plan} == {(32, 256)}  # the whole network, largest codebook
    low = plan_rate_points(quick_spec(grid=(2, 2), size=(32, 32)), [0.001])[0]
    assert not low.feasible and (low.rank, low.centroids) == (1, 16)


def test_model_rate_points_forms():
    quick = load_preset("quick")
    planned = model_rate_points(None, quick, (9, 9), (128, 128))  # the preset's own: targets
    assert [p["target_bpp"] for p in planned] == list(quick.target_bpp)
    assert all(abs(p["predicted_bpp"] / p["target_bpp"] - 1) <= 0.1 for p in planned)
    explicit = model_rate_points([[22, 256], [10, 32], [22, 256]], quick, (9, 9), (128, 128))
    assert explicit == [{"rank": 22, "centroids": 256}, {"rank": 10, "centroids": 32}]
    paper = model_rate_points(None, load_preset("paper"), (9, 9), (512, 512))
    assert (paper[0]["rank"], paper[0]["centroids"]) == (150, 256) and "target_bpp" not in paper[0]
    collapsed = model_rate_points({"target_bpp": [0.2, 0.5]}, quick, (9, 9), (512, 512))
    assert len(collapsed) == 1 and collapsed[0]["target_bpp"] == 0.2  # both beyond reach: one point
    with pytest.raises(LfcompError, match="target_bpp"):
        model_rate_points({"target_bpp": [-1]}, quick, (9, 9), (128, 128))


def test_rate_target_arithmetic():
    target = RateTarget(0.05, 9 * 9 * 128 * 128)
    assert target.bytes == pytest.approx(0.05 * 9 * 9 * 128 * 128 / 8)
    assert target.met_by(round(target.bytes * 1.09)) and not target.met_by(round(target.bytes * 1.11))
    under = RateTarget(0.05, target.pixels, "under")
    assert not under.met_by(round(target.bytes * 1.01)) and under.met_by(round(target.bytes * 0.95))
    sizes = [round(target.bytes * f) for f in (0.5, 0.97, 1.02, 2.0)]
    assert target.best(sizes) == 2 and under.best(sizes) == 1
    assert under.best([round(target.bytes * 3), round(target.bytes * 2)]) == 1  # none fits: the smallest
    assert RateTarget.from_bytes(8192, 65536).bpp == 1.0
    for bad in (0, -0.1, math.nan, math.inf, 25, "0.1", True):
        with pytest.raises(LfcompError, match="--target-bpp"):
            check_target_bpp(bad)
    with pytest.raises(LfcompError, match="--target-bytes"):
        RateTarget.from_bytes(0, 100)
    with pytest.raises(LfcompError, match="--fit"):
        RateTarget(0.1, 100, "over")


def test_qdlr_chain_to_a_target_size(tmp_path):
    """lowrank and quantize given --target-bytes: rank and codebook planned from the architecture,
    and the bitstream lands within 10 % of the target (smoke networks: the model's worst case)."""
    from lfcomp.cli.main import main
    from lfcomp.engine.checkpoint import load_checkpoint

    scene = Path(__file__).resolve().parents[1] / "data" / "cotton128"
    opts = ["--preset", "smoke", "--threads", "1", "--device", "cpu"]
    p = {k: tmp_path / k for k in ("lf.zarr", "nerf.pt", "lr.pt", "cores.zarr", "dlr.pt", "q.pt", "bits.lfc")}
    assert main(["ingest", str(scene), str(p["lf.zarr"]), "--views", "5", "5", "--crop", "32", "32"]) == 0
    assert main(["train", str(p["lf.zarr"]), str(p["nerf.pt"]), "--set", "train.steps=20", *opts]) == 0
    spec = load_checkpoint(p["nerf.pt"], ("nerf",))["spec"]
    goal = estimate_size(spec, 6, 32).bytes
    target = ["--target-bytes", str(goal), "--fit", "under"]
    assert main(["lowrank", str(p["nerf.pt"]), str(p["lf.zarr"]), str(p["lr.pt"]), *target, *opts,
                 "--set", "lowrank.steps=10"]) == 0
    planned = load_checkpoint(p["lr.pt"], ("lowrank",))
    assert planned["target"]["predicted_bytes"] <= goal and planned["target"]["reachable"]
    assert main(["decompose", str(p["lr.pt"]), str(p["cores.zarr"])]) == 0
    assert main(["distill", str(p["cores.zarr"]), str(p["lf.zarr"]), str(p["dlr.pt"]), *opts,
                 "--set", "distill.steps=5"]) == 0
    assert main(["quantize", str(p["dlr.pt"]), str(p["lf.zarr"]), str(p["q.pt"]), *target, *opts]) == 0
    assert main(["encode", str(p["q.pt"]), str(p["bits.lfc"])]) == 0
    quantized = load_checkpoint(p["q.pt"], ("quantize",))
    assert quantized["rank"] == planned["target"]["rank"]
    assert quantized["quantized"]["centroids"] == planned["target"]["centroids"]
    assert abs(p["bits.lfc"].stat().st_size / goal - 1) <= 0.10
