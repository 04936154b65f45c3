"""The whole codec chain through the CLI on the smoke preset, and its error handling.

The chain runs in-process once per module (imports are paid once); decoding runs in a separate
process from the bitstream alone and must match what the quantized model renders, bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_synthetic_lightfield
from lfcomp.cli import main
from lfcomp.cli.main import command_table
from lfcomp.cli.options import CONFIG, DEVICE
from lfcomp.codecs.decoder import decode_to_zarr
from lfcomp.codecs.qdlr.payload import CAMERA_KEYS, build_model
from lfcomp.codecs.qdlr.quantize import QuantizedModel
from lfcomp.engine.checkpoint import load_checkpoint, model_from_checkpoint
from lfcomp.errors import LfcompError
from lfcomp.io.lightfield import LightField, read_lightfield, write_lightfield
from lfcomp.models.scene import render_views

ROOT = Path(__file__).resolve().parents[1]
SCENE = ROOT / "data" / "cotton128"
SMOKE = ["--preset", "smoke", "--threads", "1", "--device", "cpu"]
COMMANDS = command_table()


def options(command: str) -> list[str]:
    """The smoke settings a command takes (each takes only the options it uses)."""
    groups = COMMANDS[command].groups
    return (["--preset", "smoke"] if CONFIG in groups else []) + (["--threads", "1", "--device", "cpu"]
                                                                  if DEVICE in groups else [])


def run(*args: str) -> int:
    return main([*map(str, args), *options(str(args[0]))])


@pytest.fixture(scope="module", params=["nerf", "nelf"])
def chain(request, tmp_path_factory) -> dict[str, Path]:
    """The whole chain for one model kind; the nelf run also holds the centre view out of training."""
    kind = request.param
    d = tmp_path_factory.mktemp(f"chain-{kind}")
    p = {k: d / v for k, v in dict(lf="lf.zarr", nerf="nerf.pt", lr="r4/lr.pt", cores="r4/cores.zarr",
                                    dlr="r4/dlr.pt", q="r4/n8/qdlr.pt", book="r4/n8/codebook.npy",
                                    bits="r4/n8/bitstream.lfc", dec="r4/n8/decoded.zarr",
                                    metrics="r4/n8/metrics.json").items()}
    assert run("ingest", SCENE, p["lf"], "--format", "hci", "--views", 5, 5, "--crop", 32, 32) == 0
    holdout = ["--set", "train.holdout_views=[[2, 2]]"] if kind == "nelf" else []
    assert run("train", p["lf"], p["nerf"], "--set", "train.steps=40", "--set", f"model.kind={kind}", *holdout) == 0
    assert run("lowrank", p["nerf"], p["lf"], p["lr"], "--rank", 4) == 0
    assert run("decompose", p["lr"], p["cores"], "--rank", 4) == 0
    assert run("distill", p["cores"], p["lf"], p["dlr"]) == 0
    assert run("quantize", p["dlr"], p["lf"], p["q"], "--centroids", 8) == 0
    assert run("encode", p["q"], p["bits"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "lfcomp.cli", "decode", str(p["bits"]), str(p["dec"]),
                           "--at", "2,2.5", "--at", "0.25,3.75", *options("decode")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert run("evaluate", p["lf"], p["dec"], p["metrics"], "--bitstream", p["bits"], "--model", p["q"]) == 0
    p["kind"] = kind
    return p


def quantized_model(path: Path):
    ckpt = load_checkpoint(path, ("quantize",))
    camera = {k: float(ckpt["state_dict"][f"camera.{k}"]) for k in CAMERA_KEYS}
    return ckpt, build_model(ckpt["spec"], camera, QuantizedModel.from_dict(ckpt["quantized"]))


def test_every_stage_wrote_its_artifact(chain):
    assert load_checkpoint(chain["q"], ("quantize",))["spec"]["kind"] == chain["kind"]
    for key in ("lf", "nerf", "lr", "cores", "dlr", "q", "book", "bits", "dec", "metrics"):
        assert chain[key].exists(), key
    assert not list(chain["lf"].parent.rglob(".*partial*"))
    nerf = load_checkpoint(chain["nerf"], ("nerf",))
    assert {"focal", "baseline", "kappa"} <= set(nerf["report"]["camera"])
    assert ("disparity_range_scene" in nerf["report"]) == (chain["kind"] == "nerf")
    assert len(nerf["history"]) > 0 and "psnr" in nerf["history"][0]
    codebook = np.load(chain["book"])
    assert codebook.shape == (8,) and np.all(np.diff(codebook) > 0)


def test_decoder_process_matches_the_quantized_model_bit_for_bit(chain):
    ckpt, model = quantized_model(chain["q"])
    stored = model_from_checkpoint(ckpt)  # the encoder-side network, from the checkpoint's weights
    for a, b in zip(stored.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    decoded = read_lightfield(chain["dec"])
    U, V = ckpt["spec"]["grid"]
    expected = render_views(stored, [(float(u), float(v)) for u in range(U) for v in range(V)])
    assert np.array_equal(decoded.views.reshape(expected.shape), expected)
    import zarr

    group = zarr.open_group(str(chain["dec"]), mode="r")
    free = np.asarray(group["free_views"][...])
    assert group.attrs["free_positions"] == [[2.0, 2.5], [0.25, 3.75]]
    assert np.array_equal(free, render_views(stored, [(2.0, 2.5), (0.25, 3.75)]))
    # a fractional viewpoint lies between its grid neighbours, not on either
    assert not np.array_equal(free[0], decoded.views[2, 2]) and not np.array_equal(free[0], decoded.views[2, 3])


def test_metrics_report_rate_distortion_and_stages(chain):
    m = json.loads(chain["metrics"].read_text())
    size = chain["bits"].stat().st_size
    assert m["bytes"] == size and m["bits"] == 8 * size
    assert m["bpp"] == pytest.approx(8 * size / (5 * 5 * 32 * 32))
    assert np.array(m["psnr_rgb_views"]).shape == (5, 5)
    assert m["psnr_rgb"] == pytest.approx(np.mean(m["psnr_rgb_views"]), abs=1e-3)
    assert 10 < m["psnr_rgb"] < 60 and 10 < m["psnr_y"] < 60
    assert set(m["stages"]) == {"nerf", "lowrank", "distill", "quantize"}
    assert m["rate_point"] == {"rank": 4, "centroids": 8}
    sizes = [m["stages"][s]["size_percent"] for s in ("nerf", "lowrank", "distill", "quantize")]
    assert sizes[0] == pytest.approx(100.0) and sizes[1] < 100 and sizes[3] < sizes[2] < 100
    if chain["kind"] == "nelf":  # the held-out centre view is reported apart, at every stage
        assert m["holdout"]["views"] == [[2, 2]]
        assert m["holdout"]["psnr_rgb"] == pytest.approx(m["psnr_rgb_views"][2][2], abs=1e-3)
        ckpt = load_checkpoint(chain["q"], ("quantize",))
        assert all(ckpt["stages"][s]["holdout"]["views"] == [[2, 2]] for s in ckpt["stages"])
        assert [2, 2] not in ckpt["stages"]["nerf"]["views"]
    else:
        assert "holdout" not in m


def test_evaluate_records_the_target_bpp_beside_the_achieved(tmp_path, capsys):
    views = make_synthetic_lightfield(3, 3, 16, 16, seed=3)
    noisy = np.clip(views.astype(int) + np.random.default_rng(0).integers(-3, 4, views.shape), 0, 255).astype(np.uint8)
    write_lightfield(LightField(views), tmp_path / "lf.zarr")
    write_lightfield(LightField(noisy), tmp_path / "dec.zarr")
    (tmp_path / "bits.lfc").write_bytes(bytes(90))  # 720 bits over 3·3·16·16 pixels: 0.3125 bpp
    args = ["evaluate", tmp_path / "lf.zarr", tmp_path / "dec.zarr"]
    assert run(*args, tmp_path / "m.json", "--bitstream", tmp_path / "bits.lfc", "--target-bpp", 0.25) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert (m["bpp"], m["target_bpp"], m["target_error"]) == (0.3125, 0.25, 0.25)
    assert run(*args, tmp_path / "plain.json", "--bitstream", tmp_path / "bits.lfc") == 0  # no target: no keys
    assert not {"target_bpp", "target_error"} & set(json.loads((tmp_path / "plain.json").read_text()))
    assert run(*args, tmp_path / "nobits.json", "--target-bpp", 0.3) == 0  # no bitstream: no achieved rate to miss
    nobits = json.loads((tmp_path / "nobits.json").read_text())
    assert nobits["target_bpp"] == 0.3 and "target_error" not in nobits and "bpp" not in nobits
    for bad in ("0", "-0.1", "nan", "inf"):
        error = one_line_error(capsys, *args, tmp_path / "bad.json", "--bitstream", tmp_path / "bits.lfc",
                               f"--target-bpp={bad}")
        assert error.startswith("lfcomp: error: --target-bpp: ") and bad in error
    assert not (tmp_path / "bad.json").exists()


def test_corrupted_bitstreams_give_clean_errors_and_no_output(chain, tmp_path):
    data = chain["bits"].read_bytes()
    rng = np.random.default_rng(0)
    out = tmp_path / "dec.zarr"
    for i in range(300):
        corrupt = bytearray(data)
        if i % 3 == 0:
            corrupt = corrupt[: rng.integers(0, len(data))]
        else:
            for _ in range(rng.integers(1, 4)):
                corrupt[rng.integers(0, len(corrupt))] ^= 1 << int(rng.integers(0, 8))
        bad = tmp_path / "bad.lfc"
        bad.write_bytes(bytes(corrupt))
        with pytest.raises(LfcompError, match="bad.lfc"):
            decode_to_zarr(bad, out)
        assert not out.exists()


def one_line_error(capsys, *args) -> str:
    assert run(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lfcomp: error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_bad_arguments_and_inputs_are_one_line_errors(chain, tmp_path, capsys):
    assert "rank must be in 1..31" in one_line_error(capsys, "lowrank", chain["nerf"], chain["lf"], tmp_path / "x.pt",
                                                     "--rank", 0)
    assert "rank must be in 1..31" in one_line_error(capsys, "lowrank", chain["nerf"], chain["lf"], tmp_path / "x.pt",
                                                     "--rank", 32)
    assert "2..65536" in one_line_error(capsys, "quantize", chain["dlr"], chain["lf"], tmp_path / "x.pt",
                                        "--centroids", 1)
    assert "2..65536" in one_line_error(capsys, "quantize", chain["dlr"], chain["lf"], tmp_path / "x.pt",
                                        "--centroids", 70000)
    assert "expected distill" in one_line_error(capsys, "quantize", chain["nerf"], chain["lf"], tmp_path / "x.pt",
                                                "--centroids", 8)
    assert "not --rank 5" in one_line_error(capsys, "decompose", chain["lr"], tmp_path / "c.zarr", "--rank", 5)
    assert "unknown key train.stepz" in one_line_error(capsys, "train", chain["lf"], tmp_path / "x.pt",
                                                       "--set", "train.stepz=3")
    garbage = tmp_path / "garbage.lfc"
    garbage.write_bytes(b"\x89PNG not a bitstream at all")
    assert "garbage.lfc" in one_line_error(capsys, "decode", garbage, tmp_path / "d.zarr")
    version = tmp_path / "future.lfc"
    version.write_bytes(chain["bits"].read_bytes()[:3] + bytes([9]) + chain["bits"].read_bytes()[4:])
    assert "version" in one_line_error(capsys, "decode", version, tmp_path / "d.zarr")
    assert "no such" in one_line_error(capsys, "encode", tmp_path / "missing.pt", tmp_path / "x.lfc")
    assert not any(tmp_path.glob("x.*")) and not (tmp_path / "d.zarr").exists()


def test_threads_are_the_cores_a_job_was_given(tmp_path, capsys):
    """``--threads`` sets torch's threads (ingest's plane sweep too: its rule runs on one core); the CLI
    leaves OpenMP's wait policy alone (PASSIVE made a 2-thread training step 1.5-1.8x slower)."""
    out = tmp_path / "lf.zarr"
    before = torch.get_num_threads()
    try:
        assert main(["ingest", str(SCENE), str(out), "--format", "hci", "--views", "3", "3", "--crop", "16", "16",
                     "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1 and read_lightfield(out).grid == (3, 3)
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit) as exit_:
        main(["ingest", str(SCENE), str(tmp_path / "x.zarr"), "--threads", "0"])
    assert exit_.value.code == 2 and "expected a positive integer, got '0'" in capsys.readouterr().err
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    proc = subprocess.run([sys.executable, "-c", "import os, lfcomp.cli.main; print(os.environ.get('OMP_WAIT_POLICY'))"],
                          capture_output=True, text=True, env=env)
    assert proc.stdout.strip() == "None", proc.stderr


def test_cuda_request_without_gpu_is_a_clean_error(chain, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["train", str(chain["lf"]), str(tmp_path / "x.pt"), "--preset", "smoke", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_error_in_a_separate_process_has_no_traceback(tmp_path):
    bad = tmp_path / "trunc.lfc"
    bad.write_bytes(b"LFC\x01\x00")
    proc = subprocess.run([sys.executable, "-m", "lfcomp.cli", "decode", str(bad), str(tmp_path / "o.zarr")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("lfcomp: error: ") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_free_viewpoint_clip_from_the_bitstream(chain, tmp_path):
    from PIL import Image

    from lfcomp.codecs.decoder import viewpoint_circle

    out = tmp_path / "clip.gif"
    assert run("clip", chain["bits"], out, "--frames", 3) == 0
    clip = Image.open(out)
    assert clip.n_frames == 3 and clip.size == (32, 32)
    path = viewpoint_circle((5, 5), 3)
    assert path[0] == (2.0, 3.5) and all(0 <= u <= 4 and 0 <= v <= 4 for u, v in path)
