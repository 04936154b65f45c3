"""The Snakemake workflow: config checks, lint, and incremental reruns proven on dry-run output.

A copy of the workflow (Snakefile, rules, schemas, envs, config.yaml) runs in a temporary folder.
The rerun tests first run the real workflow once (smoke preset, a 5x5 x 32x32 crop of the embedded
scene), then ask `snakemake --dry-run` which jobs a change would run and compare that exact set.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lfcomp.codecs.qdlr.rate_model import model_rate_points
from lfcomp.config import load_preset

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOW_FILES = ["Snakefile", "rules", "schemas", "envs", "report", "config.yaml"]

SCENE = "tiny"
MODELS = ["nerf", "nelf"]  # both model kinds, as two codecs in one run
BASE_POINTS = [[8, 16], [4, 16], [4, 8]]  # nerf's
NELF_POINTS = [[8, 16], [4, 8]]  # the same pairs as two of nerf's: the two codecs must not collide
STAGES = ["lowrank", "decompose", "distill"]  # per rank
CODEC = ["quantize", "encode", "decode", "evaluate"]  # per rate point
LAMBDAS = [0.001, 0.01]  # the latent codec's rate points (0.01 trains first, 0.001 warm-starts from it)
LATENT = ["latent_fit", "latent_encode", "latent_decode", "latent_evaluate"]  # per λ
SUMMARIES = {("summarize_scene", (("scene", SCENE),)), ("summarize_all", ()), ("report_tables", ()), ("figures", ())}


def clip(model: str = "nerf") -> set[tuple[str, tuple]]:
    """The clip job of a model kind, rendered from its first rate point's bitstream."""
    return {("clip", (("model", model), ("scene", SCENE)))}


CLIP = clip("nerf")
ANCHOR_QPS = [22, 37]


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=workdir, env=env, text=True,
                          capture_output=True, timeout=timeout)


def write_config(path: Path, **changes) -> Path:
    """The test scene on the smoke preset, with `changes` on top."""
    config = {
        "data_root": str(ROOT / "data"),
        "run": [SCENE],
        "preset": "smoke",
        "device": "cpu",
        "models": MODELS,
        "codecs": ["latent"],
        "rate_points": {"smoke": {"nerf": BASE_POINTS, "nelf": NELF_POINTS, "latent": LAMBDAS}},
        "threads": {"train": 1, "stage": 1},
        "anchors": {"hevc444": {"codec": "hevc", "chroma": "444", "qps": ANCHOR_QPS}},
        "clip_frames": 3,
        "scenes": {SCENE: {"path": "cotton128", "format": "hci", "views": [5, 5], "crop": [32, 32],
                           "dataset": "embedded cotton, 5x5 views cropped to 32x32",
                           "url": "https://lightfield-analysis.uni-konstanz.de/"}},
    }
    config.update(changes)
    path.write_text(yaml.safe_dump(config))
    return path


def planned_jobs(workdir: Path, configfile: Path) -> set[tuple[str, tuple]]:
    """The jobs a dry-run would run, as (rule, sorted wildcards); the target rule `all` left out."""
    result = snakemake(workdir, "--dry-run", "--configfile", str(configfile))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs, rule = set(), None
    for line in (result.stdout + result.stderr).splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = m[1]
            if rule != "all":
                jobs.add((rule, ()))
        elif rule and rule != "all" and (m := re.match(r"^\s+wildcards: (.*)$", line)):
            jobs.discard((rule, ()))
            wildcards = tuple(sorted(tuple(item.split("=", 1)) for item in m[1].split(", ")))
            jobs.add((rule, wildcards))
            rule = None
    return jobs


def chain(rules: list[str], rank: int, centroids: int | None = None, model: str = "nerf") -> set[tuple[str, tuple]]:
    wildcards = {"scene": SCENE, "model": model, "rank": str(rank)}
    if centroids is not None:
        wildcards["centroids"] = str(centroids)
    return {(rule, tuple(sorted(wildcards.items()))) for rule in rules}


def point_chain(rank: int, centroids: int, model: str = "nerf") -> set[tuple[str, tuple]]:
    return chain(STAGES, rank, model=model) | chain(CODEC, rank, centroids, model)


def latent_chain(lmbda: float) -> set[tuple[str, tuple]]:
    return {(rule, (("point", f"l{lmbda}"), ("scene", SCENE))) for rule in LATENT}


def model_chain(model: str, points: list[list[int]]) -> set[tuple[str, tuple]]:
    """Every job of one model kind: training, and every rate point's chain."""
    jobs = {("train", (("model", model), ("scene", SCENE)))} | clip(model)
    for rank, centroids in points:
        jobs |= point_chain(rank, centroids, model)
    return jobs


# ---------------------------------------------------------------- checks before any job starts


def first_error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("lfcomp workflow:")]


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    return copy_workflow(tmp_path / "wf")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"presett": "smoke"}, "('presett' was unexpected)"),
        ({"preset": "fast"}, "preset: 'fast' is not one of"),
        ({"threads": {"train": "two"}}, "threads.train: 'two' is not of type 'integer'"),
        ({"rate_points": {"smoke": {"nerf": [[8, "16"]]}}}, "rate_points.smoke.nerf.0.1: '16' is not of type 'integer'"),
        ({"rate_points": {"smoke": [[8, 16]]}}, "rate_points.smoke: [[8, 16]] is not of type 'object'"),
        ({"rate_points": {"smoke": {"nelf": {"target_bpp": [0.1, -1]}}}},
         "rate_points.smoke.nelf.target_bpp.1: -1 is less than or equal to the minimum of 0"),
        ({"rate_points": {"smoke": {"latent": {"target_bpp": [0.1], "fit": "over"}}}},
         "rate_points.smoke.latent.fit: 'over' is not one of ['closest', 'under']"),
        ({"models": ["nerf", "nelff"]}, "models.1: 'nelff' is not one of ['nerf', 'nelf']"),
        ({"models": []}, "models: [] should be non-empty"),
        ({"params": {"train": {"stepz": 5}}}, "unknown key train.stepz"),
        ({"params": {"nelf": {"distill": {"stepz": 5}}}}, "params (nelf): unknown key distill.stepz"),
        ({"params": {"model": {"kind": "nelf"}}}, "params: model.kind is not a parameter here; the model kinds"),
        ({"anchors": {"nelf": {"codec": "hevc", "chroma": "444", "qps": [22]}}}, "anchors: 'nelf' should not be valid"),
    ],
)
def test_bad_config_stops_with_one_message_naming_it(workflow_dir, changes, expected):
    config = write_config(workflow_dir / "bad.yaml", **changes)
    result = snakemake(workflow_dir, "--dry-run", "--configfile", str(config))
    assert result.returncode != 0
    errors = first_error_lines(result)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("lfcomp workflow: invalid config")
    assert expected in errors[0]
    assert "Traceback" not in result.stderr


def test_bad_scene_option_names_the_key(workflow_dir):
    config = write_config(workflow_dir / "bad.yaml")
    data = yaml.safe_load(config.read_text())
    data["scenes"][SCENE]["views"] = [5]
    data["scenes"][SCENE]["fromat"] = "hci"
    config.write_text(yaml.safe_dump(data))
    result = snakemake(workflow_dir, "--dry-run", "--configfile", str(config))
    assert result.returncode != 0
    errors = first_error_lines(result)
    assert len(errors) == 1 and f"scenes.{SCENE}" in errors[0], result.stderr


def test_missing_scene_data_stops_before_any_job(workflow_dir):
    # A real run (not a dry-run): it must stop before starting anything.
    config = write_config(workflow_dir / "missing.yaml", run=[SCENE, "boxes"],
                          data_root=str(workflow_dir / "nowhere"))
    data = yaml.safe_load(config.read_text())
    data["scenes"][SCENE]["path"] = str(ROOT / "data" / "cotton128")  # present (absolute path)
    config.write_text(yaml.safe_dump(data))
    result = snakemake(workflow_dir, "--cores", "1", "--configfile", str(config))
    assert result.returncode != 0
    errors = first_error_lines(result)
    assert len(errors) == 1, result.stderr
    message = errors[0]
    assert "'boxes'" in message
    assert str(Path("nowhere") / "hci" / "training" / "boxes") in message
    assert "https://lightfield-analysis.uni-konstanz.de/" in message
    assert SCENE not in message
    assert not (workflow_dir / "results").exists()
    assert not (workflow_dir / "logs").exists()


def planned(model: str) -> list[dict]:
    """The default config's rate points of a model kind on cotton128 (9x9 views of 128x128)."""
    return model_rate_points(None, load_preset("quick", model), (9, 9), (128, 128))


def test_default_config_plans_target_rate_points_for_the_embedded_scene(tmp_path):
    # The repository's own config, as `make run` uses it (embedded data, quick preset): the preset's
    # target bitrates, planned to (rank, centroids) for this scene's size before any training.
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "data").symlink_to(ROOT / "data")
    result = snakemake(workdir, "--dry-run", "--printshellcmds")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert config["preset"] == "quick" and config["rate_points"] == {}
    assert config["models"] == ["nerf"]  # the paper's; README: models: [nerf, nelf] adds the other
    text = result.stdout + result.stderr
    points = planned("nerf")
    assert len(points) >= 4 and [p["target_bpp"] for p in points] == list(load_preset("quick").target_bpp)
    for point in points:
        metrics = f"results/cotton128/nerf/r{point['rank']}/n{point['centroids']}/metrics.json"
        assert f"output: {metrics}" in text
        assert f"--target-bpp {point['target_bpp']}" in text
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    assert counts["evaluate"] == str(len(points)) and counts["train"] == "1"
    assert int(counts["lowrank"]) == len({p["rank"] for p in points})  # ranks shared between targets
    # and the latent codec beside it at the preset's targets (at least 4: the cubic BD fit), each
    # warm-started from the one below
    assert config["codecs"] == ["latent"]
    targets = load_preset("quick").latent.target_bpp
    assert int(counts["latent_evaluate"]) == len(targets) >= 4
    for low, high in zip(targets, targets[1:]):
        assert f"--target-bpp {high} --fit closest --init results/cotton128/latent/t{low}/latent.pt" in text


def test_both_model_kinds_are_two_codecs_of_one_run(tmp_path):
    # The README's one-line change to the default config: each kind its own chain and rate points.
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "data").symlink_to(ROOT / "data")
    result = snakemake(workdir, "--dry-run", "--printshellcmds", "--config", "models=[nerf,nelf]")
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    for model in ["nerf", "nelf"]:
        assert f"output: results/cotton128/{model}/{model}.pt" in text
        for point in planned(model):
            assert f"output: results/cotton128/{model}/r{point['rank']}/n{point['centroids']}/metrics.json" in text
    assert "results/cotton128/nelf/nelf.pt --preset quick --set model.kind=nelf" in text
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    assert counts["train"] == "2" and counts["clip"] == "3"  # one clip per kind, and the latent codec's
    assert counts["evaluate"] == str(sum(len(planned(m)) for m in ["nerf", "nelf"]))


def test_targets_are_planned_per_scene_size(tmp_path):
    """One config, two sizes of the same scene: the same targets give each its own (rank, centroids)."""
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "data").symlink_to(ROOT / "data")
    config = write_config(workdir / "two.yaml", models=["nerf"], codecs=[], clip_frames=0,
                          rate_points={"smoke": {"nerf": {"target_bpp": [0.5, 1.0], "fit": "under"}}},
                          run=["small", "large"],
                          scenes={"small": {"path": "cotton128", "format": "hci", "views": [3, 3], "crop": [16, 16],
                                            "dataset": "x", "url": "x"},
                                  "large": {"path": "cotton128", "format": "hci", "views": [5, 5], "crop": [32, 32],
                                            "dataset": "x", "url": "x"}})
    result = snakemake(workdir, "--dry-run", "--printshellcmds", "--configfile", str(config))
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    smoke = load_preset("smoke")
    for scene, grid, size in (("small", (3, 3), (16, 16)), ("large", (5, 5), (32, 32))):
        for point in model_rate_points({"target_bpp": [0.5, 1.0], "fit": "under"}, smoke, grid, size):
            assert f"output: results/{scene}/nerf/r{point['rank']}/n{point['centroids']}/metrics.json" in text


def test_lint_is_clean(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "data").symlink_to(ROOT / "data")
    result = snakemake(workdir, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_paper_config_lists_the_eight_scenes():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    paper = ["boxes", "sideboard", "cotton", "dino",
             "Bikes", "Danger_de_Mort", "Stone_Pillars_Outside", "Fountain_&_Vincent_2"]
    assert config["groups"]["paper"] == paper
    for name in paper:
        scene = config["scenes"][name]
        assert scene["url"].startswith("https://")
        if name[0].isupper():
            assert scene["format"] == "epfl-mat" and scene["views"] == [9, 9]
        else:
            assert scene["format"] == "hci"


# ---------------------------------------------------------------- real run, then reruns


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Path:
    """The workflow run for real once (smoke preset): the state every rerun test starts from."""
    workdir = copy_workflow(tmp_path_factory.mktemp("rerun") / "wf")
    # The smoke config replaces the repository's, whose other anchors would otherwise be merged in.
    config = write_config(workdir / "config.yaml")
    result = snakemake(workdir, "--cores", "2", "--configfile", str(config), timeout=1200)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return workdir


def test_run_makes_every_artifact(ran):
    scene = ran / "results" / SCENE
    assert (scene / "lightfield.zarr").is_dir()
    for model, points in [("nerf", BASE_POINTS), ("nelf", NELF_POINTS)]:
        codec = scene / model
        assert (codec / f"{model}.pt").is_file()
        assert (ran / "logs" / SCENE / model / "train.benchmark.tsv").is_file()
        assert (codec / "free_viewpoint.gif").is_file()
        for rank, centroids in points:
            assert (codec / f"r{rank}" / f"lr_{model}.pt").is_file()
            assert (codec / f"r{rank}" / "tt_cores.zarr").is_dir()
            assert (codec / f"r{rank}" / f"dlr_{model}.pt").is_file()
            point = codec / f"r{rank}" / f"n{centroids}"
            for name in [f"qdlr_{model}.pt", "codebook.npy", "bitstream.lfc", "metrics.json"]:
                assert (point / name).is_file(), point / name
            assert (point / "decoded.zarr").is_dir()
            metrics = json.loads((point / "metrics.json").read_text())
            assert (metrics["scene"], metrics["model_kind"]) == (SCENE, model)
            assert metrics["rate_point"] == {"rank": rank, "centroids": centroids}
            assert (ran / "logs" / SCENE / model / f"r{rank}" / f"n{centroids}" / "evaluate.benchmark.tsv").is_file()
    for qp in ANCHOR_QPS:
        point = scene / "hevc444" / f"qp{qp}"
        assert (point / "bitstream.hevc").is_file() and (point / "decoded.zarr").is_dir()
        assert json.loads((point / "metrics.json").read_text())["bytes"] == (point / "bitstream.hevc").stat().st_size
    summary = ran / "results" / "summary"
    for name in ["rd.csv", "bd_psnr.csv", "bd_psnr.md", "stages.csv", "stages.md"]:
        assert (summary / name).is_file(), name
    rd = list(csv.DictReader((summary / "rd.csv").open()))
    codecs = {row["codec"] for row in rd}
    assert codecs == {"qdlr-nerf", "qdlr-nelf", "latent", "hevc444"}
    assert sum(row["codec"] == "qdlr-nelf" for row in rd) == len(NELF_POINTS)
    assert sorted(float(row["lmbda"]) for row in rd if row["codec"] == "latent") == LAMBDAS
    bd = list(csv.DictReader((summary / "bd_psnr.csv").open()))
    assert {row["codec"] for row in bd} == {"qdlr-nerf", "qdlr-nelf", "latent"}
    assert any((summary / "figures").glob("rd_*.png")) and any((summary / "figures").glob("rd_*.svg"))
    for table in [scene / "summary.csv", ran / "results" / "summary.csv"]:
        lines = table.read_text().splitlines()
        assert lines[0].startswith("scene,")
        assert len(lines) == 1 + len(BASE_POINTS) + len(NELF_POINTS) + len(LAMBDAS)
    assert (ran / "results" / "summary.md").read_text().startswith("# Rate points")


def test_run_makes_the_latent_codecs_artifacts(ran):
    latent = ran / "results" / SCENE / "latent"
    assert (latent / "free_viewpoint.gif").is_file()
    for lmbda in LAMBDAS:
        point = latent / f"l{lmbda}"
        for name in ["latent.pt", "bitstream.lfc", "metrics.json"]:
            assert (point / name).is_file(), point / name
        metrics = json.loads((point / "metrics.json").read_text())
        assert (metrics["scene"], metrics["codec"], metrics["rate_point"]) == (SCENE, "latent", {"lmbda": lmbda})
        assert (ran / "logs" / SCENE / "latent" / f"l{lmbda}" / "latent-fit.log").is_file()
    sizes = [(latent / f"l{lmbda}" / "bitstream.lfc").stat().st_size for lmbda in LAMBDAS]
    assert sizes[1] < sizes[0]  # the larger λ, the fewer bits
    log = (ran / "logs" / SCENE / "latent" / f"l{LAMBDAS[0]}" / "latent-fit.log").read_text()
    assert "warm start from λ=0.01" in log


def test_touching_nothing_reruns_nothing(ran):
    assert planned_jobs(ran, write_config(ran / "same.yaml")) == set()


def points(nerf: list[list[int]] = BASE_POINTS, nelf: list[list[int]] = NELF_POINTS,
           latent: list[float] = LAMBDAS) -> dict:
    return {"smoke": {"nerf": nerf, "nelf": nelf, "latent": latent}}


def test_changing_centroids_reruns_only_quantize_to_evaluate(ran):
    config = write_config(ran / "centroids.yaml", rate_points=points(nerf=[[8, 16], [4, 16], [4, 4]]))
    assert planned_jobs(ran, config) == chain(CODEC, 4, 4) | SUMMARIES


def test_changing_a_rank_reruns_from_lowrank_for_that_rank_only(ran):
    config = write_config(ran / "rank.yaml", rate_points=points(nerf=[[6, 16], [4, 16], [4, 8]]))
    assert planned_jobs(ran, config) == point_chain(6, 16) | SUMMARIES | CLIP


def test_adding_a_rate_point_reuses_nerf_org(ran):
    config = write_config(ran / "added.yaml", rate_points=points(nerf=BASE_POINTS + [[2, 16]]))
    jobs = planned_jobs(ran, config)
    assert jobs == point_chain(2, 16) | SUMMARIES
    assert not {rule for rule, _ in jobs} & {"ingest", "train"}


def test_a_rate_point_of_one_kind_leaves_the_other_alone(ran):
    # (4, 16) is a nerf rate point already; as a nelf one it reuses NeLF's rank-4 models.
    config = write_config(ran / "nelf_point.yaml", rate_points=points(nelf=NELF_POINTS + [[4, 16]]))
    assert planned_jobs(ran, config) == chain(CODEC, 4, 16, "nelf") | SUMMARIES


def test_changing_a_training_parameter_reruns_the_scene(ran):
    config = write_config(ran / "train.yaml", params={"train": {"steps": 61}})
    expected = SUMMARIES | model_chain("nerf", BASE_POINTS) | model_chain("nelf", NELF_POINTS)
    assert planned_jobs(ran, config) == expected


def test_a_parameter_of_one_model_kind_reruns_only_that_kind(ran):
    config = write_config(ran / "nelf_train.yaml", params={"nelf": {"train": {"steps": 201}}})
    assert planned_jobs(ran, config) == SUMMARIES | model_chain("nelf", NELF_POINTS)


def test_adding_a_lambda_reruns_only_its_latent_chain(ran):
    config = write_config(ran / "lambda.yaml", rate_points=points(latent=[0.0001] + LAMBDAS))
    assert planned_jobs(ran, config) == latent_chain(0.0001) | SUMMARIES


def test_a_latent_parameter_reruns_only_the_latent_codec(ran):
    config = write_config(ran / "latent.yaml", params={"latent": {"steps": 301}})
    # the largest λ trains from scratch (steps); the other warm-starts from it, so it follows
    expected = latent_chain(LAMBDAS[0]) | latent_chain(LAMBDAS[1]) | SUMMARIES | clip("latent")
    assert planned_jobs(ran, config) == expected


def test_changing_a_quantize_parameter_reruns_only_quantize_on(ran):
    config = write_config(ran / "quantize.yaml", params={"quantize": {"codebook_steps": 11}})
    expected = SUMMARIES | clip("nerf") | clip("nelf")
    for rank, centroids in BASE_POINTS:
        expected |= chain(CODEC, rank, centroids)
    for rank, centroids in NELF_POINTS:
        expected |= chain(CODEC, rank, centroids, "nelf")
    assert planned_jobs(ran, config) == expected


def test_cluster_requests_follow_the_preset(tmp_path):
    # What a cluster executor submits: GPU stages with a GPU and the preset's stage runtime and
    # memory, CPU-only stages with the smaller CPU request (quick preset, the repository's config).
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "data").symlink_to(ROOT / "data")
    result = snakemake(workdir, "--dry-run", "--config", "models=[nerf,nelf]")
    assert result.returncode == 0, result.stderr
    requests, rule = {}, None
    for line in (result.stdout + result.stderr).splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = m[1]
        elif rule and (m := re.match(r"^\s+resources: (.*)$", line)):
            resources = dict(item.split("=", 1) for item in m[1].split(", "))
            requests.setdefault(rule, set()).add(
                (resources.get("runtime"), resources.get("mem_mb"), resources.get("gpu")))
            rule = None
    quick = {"train": {("30", "4000", "1")}, "cpu": {("15", "2000", None)}, "gpu": {("30", "4000", "1")}}
    assert requests["train"] == quick["train"]
    for name in ["lowrank", "distill", "quantize", "decode", "clip"]:
        assert requests[name] == quick["gpu"], name
    for name in ["ingest", "decompose", "encode", "evaluate"]:
        assert requests[name] == quick["cpu"], name
