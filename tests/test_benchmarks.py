"""The benchmark scripts stay runnable; their measured figures are printed, never asserted (the arithmetic on them is)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_throughput_benchmark_prints_its_table() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--sizes", "smoke",
                             "--steps", "1", "--repeats", "1", "--warmup", "1", "--threads", "1",
                             "--precisions", "fp32", "--samples", "4"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| smoke |")]
    assert [row.split("|")[2].strip() for row in rows] == ["nerf", "nelf"]
    assert [row.split("|")[5].strip() for row in rows] == ["4", "1"]  # --samples: the NeRF's; a NeLF ray is one
    assert all(len(row.split("|")) == 15 for row in rows)


def test_paper_stage_hours_follow_from_the_measured_rays_per_second(capsys) -> None:
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("throughput", ROOT / "benchmarks" / "throughput.py")
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    rows = [{"preset": "paper", "kind": "nerf", "precision": p, "train_lfcomp": rate}
            for p, rate in (("fp32", 512.0), ("bf16", 1024.0))]
    throughput.print_stage_hours(rows, torch.device("cpu"))
    lines = {line.split("|")[2].strip(): line.split("|") for line in capsys.readouterr().out.splitlines()
             if line.startswith("| nerf |")}
    train, distill = lines["train"], lines["distill"]
    rate = 1024.0 if train[3].strip() == "bf16" else 512.0  # auto: bf16 where this CPU has it
    assert float(train[5]) == pytest.approx(300_000 * 1024 / rate / 3600, abs=0.05)
    assert distill[3].strip() == "fp32" and float(distill[5]) == pytest.approx(200_000 * 1024 / 512 / 3600, abs=0.05)
    assert lines["quantize"][6].strip().startswith("x6 =")  # the paper's six rate points
    assert lines["lowrank"][6].strip().startswith("x4 =")  # on four ranks
    assert "**all stages, one scene**" in lines


def test_standins_are_reproducible_and_read_back_as_a_folder(tmp_path) -> None:
    import importlib.util

    from lfcomp.io.lightfield import ingest

    spec = importlib.util.spec_from_file_location("standins", ROOT / "benchmarks" / "standins.py")
    standins = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standins)
    source = ROOT / "data" / "cotton128"
    base = standins.build(source, "base", (3, 3), 2)
    assert base.shape == (3, 3, 64, 64, 3)
    assert standins.build(source, "nonsquare", (3, 3), 2).shape == (3, 3, 54, 64, 3)
    assert np.array_equal(standins.build(source, "flipped", (3, 3), 2), base[::-1])
    noisy = standins.build(source, "noisy", (3, 3), 2)
    assert np.array_equal(noisy, standins.build(source, "noisy", (3, 3), 2))  # fixed seed
    centre = (noisy[1, 1, 28:36, 28:36].astype(float) - base[1, 1, 28:36, 28:36]).std()
    assert 1.0 < centre < 3.0  # σ = 2 levels where the vignetting is nil
    corner = noisy[0, 0, :6, :6].mean() / base[0, 0, :6, :6].mean()
    assert 0.6 < corner < 0.75  # the outer view's corner darkened by about VIGNETTING
    standins.write_folder(noisy, tmp_path / "lf")
    assert np.array_equal(ingest(tmp_path / "lf", "folder").views, noisy)


def test_standins_calibrate_their_flipped_axis_and_run_as_workflow_scenes(tmp_path) -> None:
    """The flipped stand-in's ingest estimates a vertical view step of −1 (the base one +1), its
    calibrated copy starts the camera from the truth given, and the config ``--configfile`` writes
    adds the stand-ins as scenes that the workflow accepts and plans."""
    import importlib.util
    import shutil

    import yaml

    from lfcomp.codecs.qdlr.train import ESTIMATED, initial_camera_for
    from lfcomp.config import load_preset
    from lfcomp.io.lightfield import ingest, read_lightfield, write_lightfield

    spec = importlib.util.spec_from_file_location("standins", ROOT / "benchmarks" / "standins.py")
    standins = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standins)
    source = ROOT / "data" / "cotton128"
    folders = {}
    for variant in ("base", "flipped"):
        folders[variant] = tmp_path / "standins" / f"cotton128_{variant}"
        standins.write_folder(standins.build(source, variant, (5, 5), 2), folders[variant])
    ingested = {v: ingest(folder, "folder") for v, folder in folders.items()}
    steps = {v: lf.attrs["calibration"]["vertical_step"] for v, lf in ingested.items()}
    assert steps["base"] == pytest.approx(1.0, abs=0.1) and steps["flipped"] == pytest.approx(-1.0, abs=0.1)

    # the calibrated run's light field: the same views, the truth in place of the estimate
    write_lightfield(ingested["flipped"], tmp_path / "flipped.zarr")
    calibrated = standins.calibrated_copy(tmp_path / "flipped.zarr", {"range": [-0.2, 0.35], "vertical_step": -1.0})
    assert calibrated.name == "flipped_calibrated.zarr"
    lf = read_lightfield(calibrated)
    assert np.array_equal(lf.views, ingested["flipped"].views)
    assert lf.attrs["calibration"]["vertical"] == [-0.35, 0.2]
    start = initial_camera_for(lf, load_preset("quick").camera)
    assert start.origin == f"{ESTIMATED} [-0.2, 0.35]" and start.vertical_step == -1.0

    workflow = tmp_path / "workflow"
    workflow.mkdir()
    for name in ("Snakefile", "rules", "schemas", "envs", "report", "config.yaml"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(ROOT / name, workflow / name)
    config = tmp_path / "standins.yaml"
    config.write_text(yaml.safe_dump(standins.workflow_config(source, folders, 2)))
    result = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--dry-run", "--configfile", str(config),
                             "--config", "codecs=[]"], cwd=workflow, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in ("cotton128_base", "cotton128_flipped"):
        assert f"scene={name}" in result.stdout + result.stderr
