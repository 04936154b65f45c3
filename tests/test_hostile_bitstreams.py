"""A bitstream is untrusted input: the decoder validates the whole header before it allocates, and
states (and bounds) what a decode will cost before it renders."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from lfcomp.bitstream.container import join_sections, split_sections
from lfcomp.cli import main
from lfcomp.codecs.decoder import check_budget, decode_to_zarr, open_bitstream
from lfcomp.codecs.limits import GIB, DecodeLimits
from lfcomp.config import load_preset
from lfcomp.errors import LfcompError
from lfcomp.models.registry import MODEL_KINDS
from lfcomp.models.scene import SceneModel, make_spec, to_uint8
from lfcomp.models.spec import SPEC_LIMITS, check_spec

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"


def craft(stream: str, change=None, float32_change=None) -> bytes:
    """A golden stream with its header (and float32 arrays) edited and the CRC recomputed, NaN allowed."""
    version, sections = split_sections((GOLDEN / stream).read_bytes())
    unpacker = zlib.decompressobj(-15)
    parts = json.loads(unpacker.decompress(sections["header"]))
    if change:
        change(parts[0])
    if float32_change:
        values = np.frombuffer(sections["float32"], dtype="<f4").copy()
        float32_change(values)
        sections["float32"] = values.tobytes()
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    sections["header"] = packer.compress(json.dumps(parts).encode()) + packer.flush()
    return join_sections(version, list(sections.values()))


def _peak_kib() -> int:
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])


def _field(key: str, value):
    return lambda h: h["spec"]["field"].update({key: value})


# The attacks of issue 13, as filed: each was a traceback, a hang or a multi-GB allocation.
ISSUE_CASES = {
    "size 10^5 × 10^5": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"].update(size=[100000, 100000]), None, "size"),
    "grid 3·10^4 × 3·10^4": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"].update(grid=[30000, 30000]), None, "grid"),
    "depth 10^7": ("qdlr-nerf-smoke.lfc", _field("depth", 10**7), None, "field.depth"),
    "samples 10^9": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"].update(samples=10**9), None, "samples"),
    "ranks 10^8": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"]["factor_ranks"].update(trunk1=10**8), None,
                   "factor_ranks.trunk1"),
    "NaN camera": ("qdlr-nerf-smoke.lfc", None, lambda v: v.__setitem__(0, np.nan), "non-finite values in camera"),
    "NaN near (JSON)": ("qdlr-nelf-smoke.lfc", lambda h: h["spec"].update(near=math.nan), None, "near"),
    "width as a string": ("qdlr-nelf-smoke.lfc", _field("width", "64"), None, "field.width"),
    "negative width": ("qdlr-nelf-smoke.lfc", _field("width", -3), None, "field.width"),
    "huge frequencies": ("qdlr-nelf-smoke.lfc", _field("pos_freqs", 10**6), None, "field.pos_freqs"),
    "unknown kind": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"].update(kind="siren"), None, "unknown model kind"),
    "skips out of range": ("qdlr-nerf-smoke.lfc", _field("skips", [7]), None, "field.skips"),
    "missing key": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"].pop("far"), None, "lacks far"),
    "extra key": ("qdlr-nerf-smoke.lfc", lambda h: h.update(note="hi"), None, "header has unknown keys 'note'"),
    "N = 10^9": ("qdlr-nerf-smoke.lfc", lambda h: h.update(centroids=10**9), None, "N = 1000000000"),
    # a valid architecture that is not the one the stream carries: the counts differ (nothing built)
    "other valid ranks": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"]["factor_ranks"].update(trunk1=8), None,
                          "weight symbols for"),
    "render precision fp16": ("qdlr-nerf-bf16-smoke.lfc", lambda h: h["spec"].update(render_precision="fp16"),
                              None, "render_precision = 'fp16' is not one of fp32, bf16"),
    "render precision a list": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"].update(render_precision=["bf16"]),
                                None, "render_precision"),
    "vertical step 0": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"].update(vertical_step=0.0), None,
                        "vertical_step = 0.0 is not a number with |value| in 1/8..8"),
    "vertical step NaN": ("qdlr-nerf-smoke.lfc", lambda h: h["spec"].update(vertical_step=math.nan), None,
                          "vertical_step"),
    "vertical step on a NeLF": ("qdlr-nelf-smoke.lfc", lambda h: h["spec"].update(vertical_step=-1.0), None,
                                "vertical_step is set for kind nelf"),
    "latent hidden 10^7": ("latent-smoke.lfc", lambda h: h["geometry"].update(hidden=[10**7]), None, "hidden"),
    "latent warp not a bool": ("latent-smoke.lfc", lambda h: h["geometry"].update(warp="yes"), None, "warp = 'yes' is not true or false"),
    "latent extra key": ("latent-smoke.lfc", lambda h: h.update(extra=1), None, "header has unknown keys 'extra'"),
}


@pytest.mark.parametrize("case", list(ISSUE_CASES))
def test_crafted_header_is_a_one_line_error_in_seconds_and_little_memory(tmp_path: Path, case: str) -> None:
    stream, change, float32_change, expected = ISSUE_CASES[case]
    bad = tmp_path / "crafted.lfc"
    bad.write_bytes(craft(stream, change, float32_change))
    Path("/proc/self/clear_refs").write_text("5")
    baseline, start = _peak_kib(), time.perf_counter()
    with pytest.raises(LfcompError) as error:
        decode_to_zarr(bad, tmp_path / "out.zarr")
    elapsed, used_gib = time.perf_counter() - start, (_peak_kib() - baseline) / 2**20
    message = str(error.value)
    assert message.startswith(str(bad)) and "\n" not in message and len(message) < 300, message
    assert expected in message
    assert elapsed < 5 and used_gib < 1, (elapsed, used_gib)
    assert not (tmp_path / "out.zarr").exists()


def test_crafted_stream_through_the_cli_prints_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "crafted.lfc"
    bad.write_bytes(craft("qdlr-nerf-smoke.lfc", _field("depth", 10**7)))
    result = subprocess.run([sys.executable, "-m", "lfcomp.cli", "decode", str(bad), str(tmp_path / "out.zarr")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"lfcomp: error: {bad}: corrupted QDLR bitstream "
                                                  f"(field.depth = 10000000 is not an integer in 1..32)"]


@pytest.mark.parametrize("stream", ["qdlr-nerf-smoke.lfc", "qdlr-nelf-smoke.lfc", "latent-smoke.lfc"])
def test_decode_states_its_cost_and_refuses_above_the_limits(tmp_path: Path, stream: str) -> None:
    model, _ = open_bitstream(GOLDEN / stream)
    stated = check_budget(model, 25, 4096, stream)
    assert stated.startswith("25 views of 32×32 = 25600 pixels") and "MiB of memory" in stated
    tiny_memory = DecodeLimits(max_memory=model.cost.model_bytes + 1000)
    with pytest.raises(LfcompError, match=r"decoding would need .* over the limit of .* [MG]iB \(--max-memory\)"):
        check_budget(model, 25, 4096, stream, tiny_memory)
    with pytest.raises(LfcompError, match=r"over the limit of .* TMAC \(--max-tmac\)"):
        check_budget(model, 25, 4096, stream, DecodeLimits(max_macs=25 * 1024 * model.cost.macs_per_ray - 1))
    with pytest.raises(LfcompError, match=r"the decoded model would need .* [MG]iB of memory"):
        open_bitstream(GOLDEN / stream, limits=DecodeLimits(max_memory=model.cost.model_bytes - 1))
    with pytest.raises(LfcompError, match=r"larger than any bitstream this decoder reads"):
        open_bitstream(GOLDEN / stream, limits=DecodeLimits(max_file_bytes=100))


def test_cli_memory_limit_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.zarr"
    assert main(["decode", str(GOLDEN / "qdlr-nerf-smoke.lfc"), str(out), "--max-memory", "0.001"]) != 0
    err = capsys.readouterr().err.strip()
    assert "--max-memory" in err and len(err.splitlines()) == 1 and not out.exists()
    assert main(["decode", str(GOLDEN / "qdlr-nerf-smoke.lfc"), str(out), "--max-tmac", "-1"]) != 0
    assert main(["clip", str(GOLDEN / "latent-smoke.lfc"), str(tmp_path / "c.gif"), "--max-tmac", "1e-9"]) != 0
    assert "--max-tmac" in capsys.readouterr().err


def test_stated_memory_bounds_the_real_peak(tmp_path: Path) -> None:
    """The cost the decoder states is an upper bound of what a decode really uses (here: a NeRF
    rendered with 64 samples per ray in chunks of 16384 rays)."""
    bad = tmp_path / "wide.lfc"
    bad.write_bytes(craft("qdlr-nerf-smoke.lfc", lambda h: h["spec"].update(samples=64)))
    model, _ = open_bitstream(bad)
    Path("/proc/self/clear_refs").write_text("5")
    baseline = _peak_kib()
    model.render([(2.0, 2.0), (1.0, 3.5)], 16384, False)
    used = (_peak_kib() - baseline) * 1024
    cost = model.cost
    stated = cost.model_bytes + 1024 * cost.bytes_per_ray  # a 32×32 view is one chunk of 1024 rays
    assert 0 < used <= stated, (used, stated)


@pytest.mark.parametrize("preset", ["smoke", "quick", "paper"])
@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_spec_arithmetic_matches_the_built_network(preset: str, kind: str) -> None:
    from lfcomp.codecs.qdlr.quantize import bias_params, weight_params

    cfg = load_preset(preset, kind)
    spec = make_spec(cfg.model, (9, 9), (64, 48), 2.0, 6.0, 100.0)
    spec["factor_ranks"] = {"trunk0": 3, "rgb": 2}
    shape = check_spec(spec)
    model = SceneModel(spec, {"focal": 100.0, "baseline": 0.01, "kappa": 0.1}, camera_trainable=False)
    assert shape.weight_shapes == [tuple(p.shape) for _, p in weight_params(model)]
    assert shape.bias_shapes == [tuple(p.shape) for _, p in bias_params(model)]
    assert shape.weights + shape.biases == sum(p.numel() for p in model.field.parameters())
    dense = sum(p.numel() for _, p in weight_params(model))
    assert shape.macs_per_ray == dense * (cfg.model.samples if kind == "nerf" else 1)


def test_spec_limits_are_documented_and_the_paper_preset_fits() -> None:
    cfg = load_preset("paper", "nerf")
    check_spec(make_spec(cfg.model, (17, 17), (512, 512), 2.0, 6.0, 600.0))
    assert SPEC_LIMITS.samples >= cfg.model.samples and SPEC_LIMITS.width >= cfg.model.width
    spec = make_spec(cfg.model, (9, 9), (512, 512), 2.0, 6.0, 600.0)
    shape = check_spec(spec)
    full_decode = 81 * 512 * 512 * shape.macs_per_ray
    assert 1e15 < full_decode < DecodeLimits().max_macs  # the stated "1.6·10^3 TMAC" of DecodeLimits
    assert DecodeLimits().max_memory == 8 * GIB


def test_nan_pixels_become_zero_on_every_machine() -> None:
    image = np.array([[[np.nan, 0.5, np.inf]]], dtype=np.float32)
    assert to_uint8(image).tolist() == [[[0, 128, 255]]]


def test_fuzzer_finds_nothing_in_a_few_hundred_cases() -> None:
    """CI's share of benchmarks/fuzz_bitstreams.py: 100 mutated streams per codec and kind."""
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fuzz_bitstreams.py"), "--cases", "100",
                             "--seed", "7"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| **")]
    assert len(rows) == 3 and all("| 100 |" in row for row in rows), result.stdout
    decoded = sum(int(row.split("|")[4]) for row in rows)
    clean = sum(int(row.split("|")[5]) for row in rows)
    assert decoded + clean == 300 and decoded >= 20 and clean >= 150  # both sides of the decoder are reached


def test_every_codec_states_its_decode_cost() -> None:
    """The contract a codec's decoder module signs: validate and cost a payload before building it."""
    import importlib

    from lfcomp.codecs.registry import CODECS

    for codec in CODECS.values():
        module = importlib.import_module(codec.decoder)
        assert callable(module.decode_cost) and callable(module.decoded_model), codec.name
