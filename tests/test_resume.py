"""Long stages survive being killed: they save resume state and continue where they stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lfcomp.cli import main
from lfcomp.engine.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ["--preset", "smoke", "--threads", "1", "--device", "cpu", "--set", "train.steps=150",
            "--set", "train.resume_every=10", "--set", "train.log_every=10"]


@pytest.fixture(scope="module")
def lightfield(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "lf.zarr"
    assert main(["ingest", str(ROOT / "data" / "cotton128"), str(out), "--views", "3", "3", "--crop", "16", "16"]) == 0
    return out


def train_command(lf: Path, out: Path, log: Path) -> list[str]:
    return [sys.executable, "-m", "lfcomp.cli", "train", str(lf), str(out), "--log", str(log), *SETTINGS]


def test_killed_training_resumes_without_redoing_steps(lightfield, tmp_path):
    out, log = tmp_path / "nerf.pt", tmp_path / "train.log"
    resume = tmp_path / "nerf.pt.resume"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(train_command(lightfield, out, log), env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not resume.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert resume.exists(), "no resume state was written"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert not out.exists() and resume.exists()
    stopped = torch.load(resume, weights_only=True)["step"]
    assert 10 <= stopped < 150

    subprocess.run(train_command(lightfield, out, log), env=env, check=True, capture_output=True)
    assert out.exists() and not resume.exists()  # the resume state is gone once the output is complete
    text = log.read_text()
    assert f"resuming from {resume} after step {stopped}" in text
    second_run = text.split("resuming from")[1]
    logged = [int(line.split("train step ")[1].split("/")[0]) for line in second_run.splitlines()
              if "train step " in line]
    assert logged[0] > stopped and logged[-1] == 150  # continued, finished, no finished step redone
    history = load_checkpoint(out, ("nerf",))["history"]
    assert [h["step"] for h in history] == list(range(10, 151, 10))

    # and the result is the same as an uninterrupted run, bit for bit
    straight = tmp_path / "straight.pt"
    subprocess.run(train_command(lightfield, straight, tmp_path / "s.log"), env=env, check=True, capture_output=True)
    a = load_checkpoint(out, ("nerf",))["state_dict"]
    b = load_checkpoint(straight, ("nerf",))["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_state_of_other_settings_is_ignored(lightfield, tmp_path):
    out, log = tmp_path / "nerf.pt", tmp_path / "train.log"
    resume = tmp_path / "nerf.pt.resume"
    resume.write_bytes(b"not a resume state")
    assert main(["train", str(lightfield), str(out), "--log", str(log), *SETTINGS[:-4],
                 "--set", "train.steps=30", "--set", "train.resume_every=10"]) == 0
    assert "ignoring unreadable resume state" in log.read_text()
    assert out.exists() and not resume.exists()


def test_admm_resumes_with_its_dual_state(monkeypatch, tmp_path):
    """Interrupt ADMM mid-way (as SIGTERM does), resume, and get exactly the uninterrupted result."""
    import lfcomp.codecs.qdlr.lowrank as lowrank
    from conftest import make_synthetic_lightfield
    from lfcomp.config import load_preset, merge
    from lfcomp.engine.resume import Resume
    from lfcomp.engine.trainer import request_stop
    from lfcomp.models.camera import initial_camera
    from lfcomp.models.scene import SceneModel, make_spec

    views = make_synthetic_lightfield(3, 3, 8, 8)
    cfg = merge(load_preset("smoke"), {"train": {"batch_rays": 64, "eval_views": 1, "log_every": 4},
                                       "lowrank": {"steps": 24, "z_update_every": 4},
                                       "model": {"width": 16, "samples": 6}})
    admm = cfg.lowrank
    spec = make_spec(cfg.model, (3, 3), (8, 8), 2.0, 6.0, 10.0)

    def fresh() -> SceneModel:
        torch.manual_seed(0)
        return SceneModel(spec, initial_camera(8, 8, (-1, 1), 2.0, 6.0), camera_trainable=False)

    straight, _ = lowrank.admm_lowrank(fresh(), views, 4, admm, cfg.train)
    resume = Resume(tmp_path / "lr.resume", every=100, fingerprint="test")
    original = lowrank.relative_residuals

    def stop_at_step_12(weights, targets):
        if len(calls) == 2:  # the Z-update of step 12
            request_stop()
        calls.append(1)
        return original(weights, targets)

    calls: list[int] = []
    monkeypatch.setattr(lowrank, "relative_residuals", stop_at_step_12)
    with pytest.raises(KeyboardInterrupt):
        lowrank.admm_lowrank(fresh(), views, 4, admm, cfg.train, Resume(resume.path, 100, "test"))
    assert torch.load(resume.path, weights_only=True)["step"] == 12
    monkeypatch.setattr(lowrank, "relative_residuals", original)
    resumed, extras = lowrank.admm_lowrank(fresh(), views, 4, admm, cfg.train, Resume(resume.path, 100, "test"))
    assert [r["step"] for r in extras["admm_residuals"]] == [4, 8, 12, 16, 20, 24]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
