"""Hard kills (SIGKILL) at random moments of every stage: nothing incomplete is ever left where an
artifact belongs, and the rerun of the same command gives the uninterrupted result bit for bit,
whether it starts over or continues from the stage's resume state (``OUT.resume``).

Each stage runs once uninterrupted on a tiny light field (the reference, whose outputs are also the
next stage's inputs). Then, per kill point, the same command starts in a fresh folder and is
killed: at a seeded random fraction of the reference's run time, a seeded random moment after its
resume state reached a step (training stages), while a file is being written (a ``.partial-PID``
exists), or as soon as its output appears. The folder must then hold only complete artifacts,
a complete resume state and hidden leftovers. Stale ``.partial-PID`` siblings are planted before
the rerun; they must never be taken for an artifact or a resume state.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
DEVICE = ("--threads", "1", "--device", "cpu")
# smoke preset; a resume state every 5 steps; latent codec: 100 steps, rounding (STE) from step 50
CONFIG = ("--preset", "smoke", "--set", "train.resume_every=5", "--set", "latent.steps=100",
          "--set", "latent.ste_fraction=0.5")
SEED = 1234
STALE_PID = 4194305  # above Linux's largest pid: no live process writes this partial
TIMING = re.compile(r"seconds|time", re.IGNORECASE)  # report keys that may differ between runs


@dataclass(frozen=True)
class Stage:
    """One ``lfcomp`` subcommand as the workflow runs it: inputs (earlier artifacts), its artifact."""

    command: str
    inputs: tuple[str, ...]
    output: str
    options: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # further artifacts beside the output (quantize's codebook)
    resume_steps: tuple[int, ...] = ()  # training stages: kill points once OUT.resume reached these steps

    def argv(self, inputs: Path, out: Path, log: Path) -> list[str]:
        return [sys.executable, "-m", "lfcomp.cli", self.command, *(str(inputs / name) for name in self.inputs),
                str(out), *self.options, "--log", str(log)]


STAGES = {stage.command: stage for stage in (
    Stage("train", ("lightfield.zarr",), "nerf.pt", (*CONFIG, *DEVICE), resume_steps=(5,)),
    Stage("lowrank", ("nerf.pt", "lightfield.zarr"), "lr_nerf.pt", ("--rank", "8", *CONFIG, *DEVICE), resume_steps=(5,)),
    Stage("decompose", ("lr_nerf.pt",), "tt_cores.zarr", ("--rank", "8")),
    Stage("distill", ("tt_cores.zarr", "lightfield.zarr"), "dlr_nerf.pt", (*CONFIG, *DEVICE), resume_steps=(5,)),
    Stage("quantize", ("dlr_nerf.pt", "lightfield.zarr"), "qdlr_nerf.pt", ("--centroids", "16", *CONFIG, *DEVICE),
          also=("codebook.npy",)),
    Stage("encode", ("qdlr_nerf.pt",), "bitstream.lfc"),
    Stage("decode", ("bitstream.lfc",), "decoded.zarr", DEVICE),
    # resumed while the latents train with noise (drawn from the global RNG), and once they are rounded
    Stage("latent-fit", ("lightfield.zarr",), "latent.pt", ("--lmbda", "0.01", *CONFIG, *DEVICE),
          resume_steps=(10, 55)),
    Stage("latent-encode", ("latent.pt", "lightfield.zarr"), "latent.lfc"),
)}


@dataclass(frozen=True)
class Kill:
    """When to SIGKILL: ``fraction`` of the reference run time after the start; or ``delay`` seconds
    after the resume state reached step ``after_step``; or as soon as ``on`` appears: ``output``,
    or a ``partial`` (a write in progress)."""

    fraction: float | None = None
    after_step: int | None = None
    on: str | None = None
    delay: float = 0.0

    def __str__(self) -> str:
        if self.fraction is not None:
            return f"at{self.fraction:.2f}"
        return f"step{self.after_step}+{self.delay:.2f}s" if self.after_step else f"on-{self.on}"


def kill_points(stage: Stage) -> list[tuple[Kill, bool]]:
    """(kill point, slow). By default: a seeded random moment; for a training stage a random moment
    after each of its resume steps, else a kill while its output is being written (a ``.partial``
    exists); ``train`` also the latter (a half-written resume state); ``decompose``, only the input
    of the others, only the latter. With ``-m slow``: the rest of these, another random moment and
    a kill as soon as the output exists."""
    rng = random.Random(f"{SEED}-{stage.command}")
    fraction = lambda: Kill(fraction=round(rng.uniform(0.1, 0.9), 2))  # noqa: E731
    first = fraction()
    resumed = [Kill(after_step=step, delay=round(rng.uniform(0.0, 0.1), 2)) for step in stage.resume_steps]
    partial, output, another = Kill(on="partial"), Kill(on="output"), fraction()
    default = [partial] if stage.command == "decompose" else [
        first, *resumed, *([partial] if not resumed or stage.command == "train" else [])]
    slow = [kill for kill in (first, partial, output, another) if kill not in default]
    return [(kill, False) for kill in default] + [(kill, True) for kill in slow]


CASES = [pytest.param(stage, kill, id=f"{stage.command}-{kill}", marks=[pytest.mark.slow] if slow else [])
         for stage in STAGES.values() for kill, slow in kill_points(stage)]


@dataclass
class Chain:
    """The uninterrupted runs, made on first use: each stage's reference artifact (in ``folder``,
    also the input of the stages after it) and its run time."""

    folder: Path
    seconds: dict[str, float]

    def reference(self, stage: Stage) -> float:
        """Run ``stage`` uninterrupted (and the stages it needs, first) unless done; its run time."""
        if stage.command not in self.seconds:
            for name in stage.inputs:
                producer = next((s for s in STAGES.values() if s.output == name), None)
                if producer is not None:
                    self.reference(producer)
            start = time.monotonic()
            run = subprocess.run(stage.argv(self.folder, self.folder / stage.output,
                                            self.folder / f"{stage.command}.log"), env=ENV, capture_output=True,
                                 text=True)
            assert run.returncode == 0, f"reference {stage.command} failed:\n{run.stderr[-3000:]}"
            self.seconds[stage.command] = time.monotonic() - start
            assert not (self.folder / f"{stage.output}.resume").exists()
        return self.seconds[stage.command]


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Chain:
    folder = tmp_path_factory.mktemp("sigkill-reference")
    subprocess.run([sys.executable, "-m", "lfcomp.cli", "ingest", str(ROOT / "data" / "cotton128"),
                    str(folder / "lightfield.zarr"), "--views", "3", "3", "--crop", "16", "16"],
                   env=ENV, check=True, capture_output=True)
    return Chain(folder, {})


def same(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two loaded checkpoints differ (tensors bit for bit, timing fields skipped); [] if nowhere."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        equal = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                 and a.shape == b.shape and torch.equal(a, b))
        return [] if equal else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a.keys() ^ b.keys())}"]
        return [d for k in a if not TIMING.search(str(k)) for d in same(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def differences(path: Path, reference: Path) -> list[str]:
    """How an artifact differs from its reference: checkpoints by content, bitstreams and zarr
    folders byte for byte (so decoded views are identical); [] when it is the same."""
    if not path.exists():
        return ["missing"]
    if path.suffix == ".pt":
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated file
            return [f"unreadable ({type(exc).__name__})"]
        return same(loaded, torch.load(reference, map_location="cpu", weights_only=True))
    if path.is_dir():
        files = sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file())
        expected = sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file())
        if files != expected:
            return [f"files {sorted(set(map(str, files)) ^ set(map(str, expected)))}"]
        return [str(f) for f in files if (path / f).read_bytes() != (reference / f).read_bytes()]
    return [] if path.read_bytes() == reference.read_bytes() else ["bytes differ"]


def check_folder(folder: Path, stage: Stage, reference: Path) -> dict[str, Any]:
    """What the workflow would see after a kill: only complete artifacts (equal to the reference), a
    complete resume state, and hidden ``.NAME.partial-PID`` (or ``.old-PID``) leftovers. Returns what
    was found."""
    artifacts = {stage.output, *stage.also}
    resume_name = f"{stage.output}.resume"
    found: dict[str, Any] = {"partials": [], "artifacts": [], "resume_step": None}
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name.endswith(".log"):
            continue
        if name.startswith("."):
            match = re.fullmatch(r"\.(.+)\.(partial|old)-\d+", name)
            assert match and match[1] in artifacts | {resume_name}, f"unexpected hidden entry {name}"
            found["partials"].append(name)
        elif name in artifacts:
            problems = differences(entry, reference / name)
            assert not problems, f"{name} exists after the kill but is not the complete artifact: {problems[:5]}"
            found["artifacts"].append(name)
        elif name == resume_name:
            state = torch.load(entry, map_location="cpu", weights_only=True)  # complete, or this raises
            found["resume_step"] = int(state["step"])
        else:
            pytest.fail(f"unexpected entry {name} after the kill")
    return found


def plant_stale_partials(folder: Path, stage: Stage) -> list[Path]:
    """Leftovers of an earlier killed run, with content that is not an artifact."""
    planted = []
    for name in (stage.output, *stage.also, f"{stage.output}.resume"):
        path = folder / f".{name}.partial-{STALE_PID}"
        if name.endswith(".zarr"):
            path.mkdir()
            (path / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"')
        else:
            path.write_bytes(b"PK\x03\x04 half a file")
        planted.append(path)
    return planted


def kill(proc: subprocess.Popen, point: Kill, out: Path, seconds: float) -> bool:
    """SIGKILL ``proc`` at ``point``; returns whether it was still running then."""
    resume = out.with_name(out.name + ".resume")
    deadline = time.monotonic() + 20 * seconds + 60

    def reached() -> bool:
        if point.on == "output":
            return out.exists()
        if point.on == "partial":
            return any(".partial-" in name for name in os.listdir(out.parent))
        try:
            return torch.load(resume, map_location="cpu", weights_only=True)["step"] >= point.after_step
        except FileNotFoundError:  # not written yet
            return False
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"{resume} was incomplete while the stage ran ({type(exc).__name__})")

    if point.fraction is not None:
        wait = point.fraction * seconds
    else:
        while proc.poll() is None and time.monotonic() < deadline and not reached():
            time.sleep(0.002)
        wait = point.delay
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        pass
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return running


@pytest.mark.parametrize("stage, point", CASES)
def test_rerun_after_sigkill_gives_the_uninterrupted_result(chain, stage, point, tmp_path):
    out, log = tmp_path / stage.output, tmp_path / f"{stage.command}.log"
    resume = out.with_name(out.name + ".resume")
    argv = stage.argv(chain.folder, out, log)
    seconds = chain.reference(stage)
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    running = kill(proc, point, out, seconds)
    if point.after_step:
        assert running, "the stage finished before the kill point"

    found = check_folder(tmp_path, stage, chain.folder)
    if point.after_step:
        assert found["resume_step"] is not None and found["resume_step"] >= point.after_step
    if point.on == "output":
        assert stage.output in found["artifacts"]
    planted = plant_stale_partials(tmp_path, stage)
    before = log.stat().st_size if log.exists() else 0

    rerun = subprocess.run(argv, env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for name in (stage.output, *stage.also):
        problems = differences(tmp_path / name, chain.folder / name)
        assert not problems, f"rerun's {name} differs from the uninterrupted run: {problems[:5]}"
    assert not resume.exists()  # gone once the output is complete
    rerun_log = log.read_bytes()[before:].decode()  # ``before`` counts bytes: the log holds Δ, ρ, ×
    assert "ignoring" not in rerun_log  # no resume state was unreadable or foreign
    resumed = re.findall(r"resuming from .* after step (\d+)", rerun_log)
    assert resumed == ([str(found["resume_step"])] if found["resume_step"] is not None else [])
    # the stale leftovers were never taken for the artifact (nor for the resume state): still there, untouched
    assert all(p.exists() for p in planted)
    assert check_folder(tmp_path, stage, chain.folder)["resume_step"] is None
    state = (f"output there ({', '.join(found['artifacts'])})" if found["artifacts"] else "no output") + (
        f", resume state after step {found['resume_step']}" if found["resume_step"] is not None else "")
    print(f"\n{stage.command} killed {point} ({'running' if running else 'had exited'}): {state}, "
          f"{len(found['partials'])} partial(s) left; rerun {'resumed' if resumed else 'started over'}, identical")


# atomic_output itself, killed at each file-system step of publishing (deterministic)

CHILD = textwrap.dedent("""
    import os, shutil, signal, sys
    from pathlib import Path
    import lfcomp.artifacts as artifacts

    out, version, kill_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    ops, real_replace, real_rmtree = [0], os.replace, shutil.rmtree

    def step(partial=None):
        if ops[0] == kill_at:
            if partial is not None:  # a deletion half done
                next(Path(partial).iterdir()).unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        ops[0] += 1

    def replace(src, dst):
        step()
        real_replace(src, dst)

    def rmtree(path, *args, **kwargs):
        step(path)
        real_rmtree(path, *args, **kwargs)

    os.replace, artifacts.shutil.rmtree = replace, rmtree
    with artifacts.atomic_output(out) as tmp:
        if kill_at < 0:  # killed while writing
            tmp.mkdir()
            (tmp / "a").write_text(version)
            os.kill(os.getpid(), signal.SIGKILL)
        tmp.mkdir()
        for name in ("a", "b", "c"):
            (tmp / name).write_text(version)
""")


def _publish(out: Path, version: str, kill_at: int = 1_000) -> int:
    return subprocess.run([sys.executable, "-c", CHILD, str(out), version, str(kill_at)], env=ENV).returncode


def _version(out: Path) -> str | None:
    """The version of a complete artifact folder, None when absent; fails on an incomplete one."""
    if not out.exists():
        return None
    contents = {p.name: p.read_text() for p in out.iterdir()}
    assert sorted(contents) == ["a", "b", "c"] and len(set(contents.values())) == 1, f"incomplete: {contents}"
    return contents["a"]


@pytest.mark.parametrize("kill_at", [-1, 0, 1, 2, 3])
def test_a_hard_kill_never_leaves_an_incomplete_folder(tmp_path, kill_at):
    """Killed while writing, or at any step of replacing a previous version: the folder is the
    previous version, absent, or the new one; never something in between."""
    out = tmp_path / "decoded.zarr"
    assert _publish(out, "v1") == 0 and _version(out) == "v1"
    rc = _publish(out, "v2", kill_at)
    assert rc in (0, -signal.SIGKILL)
    assert _version(out) in ("v1", "v2", None)
    if kill_at == -1:
        assert rc == -signal.SIGKILL and _version(out) == "v1"
    assert _publish(out, "v3") == 0 and _version(out) == "v3"  # leftovers do not stop the next run
    assert all(re.fullmatch(r"\.decoded\.zarr\.(partial|old)-\d+", p.name) for p in tmp_path.iterdir()
               if p.name != "decoded.zarr")
