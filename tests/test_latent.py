"""The latent codec: its entropy model's plan and integer twin, the chain through the CLI on the
smoke preset, separate-process decoding bit for bit, rate against λ, and hostile bitstreams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from lfcomp.bitstream.container import CodecPayload, decode_payload, encode_payload
from lfcomp.cli import main
from lfcomp.codecs.decoder import decode_to_zarr
from lfcomp.codecs.limits import DecodeLimits
from lfcomp.codecs.latent.entropy_model import ARM, gather_context, laplace_bits, plan_contexts
from lfcomp.codecs.latent.fit import render_views
from lfcomp.codecs.latent.payload import model_from_payload
from lfcomp.errors import LfcompError
from lfcomp.io.lightfield import read_lightfield

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "data" / "cotton128"
SMOKE = ["--preset", "smoke", "--threads", "1", "--device", "cpu"]


def test_every_latent_is_coded_once_and_only_after_its_context():
    shapes = [(3, 3), (5, 6), (9, 11), (4, 4)]
    plan = plan_contexts(shapes, [None, 0, 1, None], [2, 1, 0, 0], [False, False, False, True])
    assert sorted(plan.position.tolist()) == list(range(plan.total)) == list(range(sum(r * c for r, c in shapes)))
    decoded: set[int] = set()
    for rows in plan.passes:
        context = set(plan.neighbours[rows].ravel().tolist()) | set(plan.coarse[rows].tolist())
        assert context - {-1} <= decoded  # a pass reads only what earlier passes decoded
        decoded |= set(plan.position[rows].tolist())
    assert len(plan.passes) == 3 * len(shapes)


def test_the_integer_entropy_model_follows_the_float_one():
    torch.manual_seed(0)
    plan = plan_contexts([(6, 7), (12, 13)], [None, 0], [1, 0], [False, False])
    arm = ARM(8)
    with torch.no_grad():
        for p in arm.parameters():
            p.normal_(0, 0.3)
    values = torch.round(torch.randn(plan.total) * 4)
    context = gather_context(values, plan)
    mean, log2_scale = arm(context)
    int_mean, int_scale = arm.integer().predict(context.long().numpy())
    assert np.abs(mean.detach().numpy() - int_mean).max() <= 1 / 32 + 0.02  # snapping plus fixed-point rounding
    assert np.abs(log2_scale.detach().numpy() - np.log2(int_scale)).max() <= 1 / 16 + 0.02
    again = arm.integer().predict(context.long().numpy())
    assert np.array_equal(again[0], int_mean) and np.array_equal(again[1], int_scale)
    bits = laplace_bits(values[torch.as_tensor(plan.position)], mean, log2_scale)
    assert torch.all(bits > 0) and bits.requires_grad


def run(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("latent")
    p = {k: d / v for k, v in dict(lf="lf.zarr", hi="hi.pt", lo="lo.pt", bits_hi="hi.lfc", bits_lo="lo.lfc",
                                    dec="dec.zarr", metrics="metrics.json").items()}
    assert run("ingest", SCENE, p["lf"], "--format", "hci", "--views", 5, 5, "--crop", 32, 32) == 0
    assert run("latent-fit", p["lf"], p["hi"], "--lmbda", 1e-4, *SMOKE) == 0
    assert run("latent-fit", p["lf"], p["lo"], "--lmbda", 3e-2, "--init", p["hi"], *SMOKE) == 0
    assert run("latent-encode", p["hi"], p["lf"], p["bits_hi"]) == 0
    assert run("latent-encode", p["lo"], p["lf"], p["bits_lo"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "lfcomp.cli", "decode", str(p["bits_hi"]), str(p["dec"]),
                           "--at", "2,2.5", "--threads", "1", "--device", "cpu"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert run("evaluate", p["lf"], p["dec"], p["metrics"], "--bitstream", p["bits_hi"], "--model", p["hi"]) == 0
    return p


def test_separate_process_decode_is_the_encoders_reconstruction(chain):
    model = model_from_payload(decode_payload(chain["bits_hi"].read_bytes()), "hi.lfc")
    positions = [(float(u), float(v)) for u in range(5) for v in range(5)]
    decoded = read_lightfield(chain["dec"]).views.reshape(25, 32, 32, 3)
    assert np.array_equal(decoded, render_views(model, positions))
    import zarr

    free = np.asarray(zarr.open_group(str(chain["dec"]), mode="r")["free_views"][...])
    assert np.array_equal(free, render_views(model, [(2.0, 2.5)]))


def test_metrics_name_the_codec_its_rate_point_and_complexity(chain):
    m = json.loads(chain["metrics"].read_text())
    assert m["codec"] == "latent" and m["rate_point"] == {"lmbda": 1e-4} and "model_kind" not in m
    assert m["bytes"] == chain["bits_hi"].stat().st_size and m["bpp"] == pytest.approx(8 * m["bytes"] / (25 * 32 * 32))
    assert 20 < m["psnr_rgb"] < 60  # it learned the views (smoke: a few hundred steps)
    assert 0 < m["macs_per_pixel"] <= 3000 and m["latents"] > 0 and m["params"] > 0


def test_a_larger_lambda_costs_fewer_bits(chain):
    assert chain["bits_lo"].stat().st_size < chain["bits_hi"].stat().st_size
    lo = torch.load(chain["lo"], weights_only=True)
    assert lo["report"]["steps"] == 100  # warm start: the preset's warm_steps


def _restamp(data: bytes, header_change) -> bytes:
    """The stream with its JSON header changed and a valid CRC (what an attacker would send)."""
    payload = decode_payload(data)
    header = json.loads(json.dumps(payload.header))
    header_change(header)
    return encode_payload(CodecPayload(header, payload.float32, payload.uint16, payload.symbols, payload.data))


@pytest.mark.parametrize("change", [
    lambda h: h["geometry"].update(levels=10**6),
    lambda h: h["geometry"].update(size=[100000, 100000]),
    lambda h: h["geometry"].update(grid=[30000, 30000]),
    lambda h: h["geometry"].update(hidden=[10**7]),
    lambda h: h["geometry"].update(gain=-1.0),
    lambda h: h.update(latent_bound=-5),
    lambda h: h.update(arm_hidden="wide"),
    lambda h: h.pop("geometry"),
    lambda h: h.update(format=99),
])
def test_crafted_headers_are_clean_errors_before_allocating(chain, tmp_path, change):
    bad = tmp_path / "bad.lfc"
    bad.write_bytes(_restamp(chain["bits_hi"].read_bytes(), change))
    with pytest.raises(LfcompError, match="bad.lfc"):
        decode_to_zarr(bad, tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


def test_corrupted_and_truncated_streams_give_one_line_errors(chain, tmp_path):
    data = chain["bits_hi"].read_bytes()
    rng = np.random.default_rng(1)
    out = tmp_path / "dec.zarr"
    outcomes = {"clean error": 0, "decoded": 0}
    for i in range(200):
        corrupt = bytearray(data)
        if i % 4 == 0:
            corrupt = corrupt[: rng.integers(0, len(data))]
        elif i % 4 == 1:  # damage the range-coded data, then make the CRC valid again
            body = corrupt[:-4]
            body[rng.integers(len(body) // 2, len(body))] ^= 1 << int(rng.integers(0, 8))
            corrupt = body + zlib.crc32(bytes(body)).to_bytes(4, "little")
        else:
            for _ in range(rng.integers(1, 4)):
                corrupt[rng.integers(0, len(corrupt))] ^= 1 << int(rng.integers(0, 8))
        bad = tmp_path / "bad.lfc"
        bad.write_bytes(bytes(corrupt))
        try:
            decode_to_zarr(bad, out)
            outcomes["decoded"] += 1  # a valid CRC over damaged range-coded data may still decode
        except LfcompError as exc:
            assert "bad.lfc" in str(exc) and "\n" not in str(exc)
            outcomes["clean error"] += 1
        if out.exists():
            import shutil

            shutil.rmtree(out)
    assert outcomes["clean error"] >= 150


@pytest.mark.parametrize("change", [
    lambda h: h["spec"].update(size=[100000, 100000]),  # QDLR: 40 GB of views before this check
    lambda h: h["spec"].update(grid=[30000, 30000]),
])
def test_a_decode_too_large_to_render_is_refused_before_rendering(tmp_path, change):
    golden = Path(__file__).parent / "data" / "golden" / "qdlr-nerf-smoke.lfc"
    bad = tmp_path / "huge.lfc"
    bad.write_bytes(_restamp(golden.read_bytes(), change))
    with pytest.raises(LfcompError, match=r"huge\.lfc: corrupted QDLR bitstream \((size|grid) = .* not an integer"):
        decode_to_zarr(bad, tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


def test_the_output_limit_holds_for_every_codec_and_the_clip(chain, tmp_path):
    import lfcomp.codecs.decoder as decoder

    limits = DecodeLimits(max_pixels=24 * 32 * 32)  # one view less than the 5×5 grid
    with pytest.raises(LfcompError, match="25 views of 32×32 .* over the limit of 24576 pixels"):
        decoder.decode_to_zarr(chain["bits_hi"], tmp_path / "out.zarr", limits=limits)
    decoder.decode_to_zarr(chain["bits_hi"], tmp_path / "few.zarr", grid_views=False, free_positions=[(1.0, 1.5)],
                           limits=limits)
    with pytest.raises(LfcompError, match="30 views"):
        decoder.render_clip(chain["bits_hi"], tmp_path / "clip.gif", frames=30, limits=limits)
    assert not (tmp_path / "out.zarr").exists() and not (tmp_path / "clip.gif").exists()
