# Helpers that turn the validated config into what the rules need. No rules here.

import functools
import json
import os
import shlex
import sys

from lfcomp.codecs.qdlr.rate_model import model_rate_points
from lfcomp.codecs.registry import CODECS, LATENT, QDLR
from lfcomp.config import load_preset, merge
from lfcomp.errors import LfcompError
from lfcomp.io.lightfield import probe_shape
from lfcomp.models.registry import MODEL_KINDS

# Jobs call the `lfcomp` installed beside the Python that runs Snakemake (e.g. .venv/bin), also
# when that environment is not activated. (With --sdm conda, the rule's environment comes first.)
_bin, _path = os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)
if _path.split(os.pathsep)[0] != _bin:
    os.environ.update(PATH=os.pathsep.join([_bin, _path]))


def stop(message):
    """End the run before any job starts, with one message and no traceback."""
    sys.exit(f"lfcomp workflow: {message}")


def validation_message(exc):
    """One line naming the offending key from snakemake.utils.validate's WorkflowError."""
    error = exc.__context__
    if not hasattr(error, "absolute_path"):  # not a jsonschema.ValidationError
        return str(exc).strip().splitlines()[-1]
    while error.context:  # oneOf (explicit or target rate points): the alternative that got furthest
        error = max(error.context, key=lambda e: len(e.absolute_path))
    where = ".".join(str(part) for part in error.absolute_path) or "top level"
    sources = [str(f) for f in workflow.configfiles]
    sources += ["--config"] if workflow.config_settings.config else []
    return f"{', '.join(sources)}: {where}: {error.message}"


def preset_for(model):
    """The run's preset as written for a model kind (a `Config`)."""
    return load_preset(config["preset"], model, where=f"models: {model}")


ANCHOR_RESOURCES = {"mem_mb": 2000, "runtime": 30}  # one video-codec job at one QP, on a CPU


def job_resources(kind):
    """Cluster requests of a job, in one place: `train` (the original model), `gpu` (the other
    training and rendering stages) and `cpu` (the rest) from the preset's `runtime` section, and
    `anchor` (a classical codec at one QP)."""
    if kind == "anchor":
        return dict(ANCHOR_RESOURCES)
    if kind == "cpu":
        return {"mem_mb": RUNTIME.cpu_mem_mb, "runtime": RUNTIME.cpu_minutes}
    minutes = RUNTIME.train_minutes if kind == "train" else RUNTIME.stage_minutes
    # gpu: sbatch --gpus on a cluster; ignored by local --cores runs
    return {"mem_mb": RUNTIME.mem_mb, "runtime": minutes, "gpu": RUNTIME.gpus}


def chosen_rate_points(name):
    """The config's rate points of a model kind or codec for this preset (None: the preset's own)."""
    return config["rate_points"].get(config["preset"], {}).get(name)


@functools.cache
def scene_shape(name):
    """(U, V, H, W) of a scene as ingested, from its files' names and headers (no pixels read)."""
    scene = config["scenes"][name]
    try:
        return probe_shape(scene_path(name), scene["format"], scene.get("views"), scene.get("crop"), scene.get("size"))
    except LfcompError as exc:
        stop(f"scene {name}: {exc}")


def rate_points(scene, model):
    """A model kind's QDLR rate points on a scene ({rank, centroids}, with target_bpp when planned
    from a target bitrate for this scene's size): lfcomp.codecs.qdlr.rate_model.model_rate_points."""
    U, V, H, W = scene_shape(scene)
    cfg = merge(preset_for(model), scene_params(scene, model))
    try:
        return model_rate_points(chosen_rate_points(model), cfg, (U, V), (H, W))
    except LfcompError as exc:
        stop(f"invalid config: rate_points.{config['preset']}.{model}: {exc}")


def qdlr_target(wildcards):
    """`--target-bpp` of a QDLR rate point planned from a target (empty for an explicit one)."""
    for point in RATE_POINTS[wildcards.scene, wildcards.model]:
        if (str(point["rank"]), str(point["centroids"])) == (wildcards.rank, wildcards.centroids):
            return f"--target-bpp {point['target_bpp']}" if "target_bpp" in point else ""
    return ""


def scene_params(name, model=None):
    """Stage parameter overrides of a scene and model kind: the global ones, the global ones of the
    kind (params.<kind>), then the scene's own in the same order. Without a kind (the latent codec),
    the global and the scene's ones."""
    merged = {}
    for source in (config["params"], config["scenes"][name].get("params", {})):
        for block in (source, source.get(model, {}) if model in MODEL_KINDS else {}):
            for section, values in block.items():
                if section not in MODEL_KINDS:  # params.nerf / params.nelf: the blocks above
                    merged.setdefault(section, {}).update(values)
    return merged


def scene_path(name):
    return os.path.join(config["data_root"], config["scenes"][name]["path"])


def selected_scenes():
    """Names of the scenes to run; stops with one message if a name is unknown, a parameter
    override names no parameter of the preset, or a scene's data is missing."""
    scenes, groups = config["scenes"], config["groups"]
    names = []
    for name in [config["run"]] if isinstance(config["run"], str) else config["run"]:
        if name in groups:
            names += groups[name]
        elif name in scenes:
            names.append(name)
        else:
            known = ", ".join(list(scenes) + list(groups))
            stop(f"invalid config: run: unknown scene or group {name!r} (known: {known})")
    names = list(dict.fromkeys(names))
    for name in names:
        if name not in scenes:
            stop(f"invalid config: groups: unknown scene {name!r} (known: {', '.join(scenes)})")
        for model in MODELS:
            if "kind" in scene_params(name, model).get("model", {}):
                stop(f"invalid config: scene {name}: params: model.kind is not a parameter here; "
                     "the model kinds to run are listed in `models:` (e.g. models: [nerf, nelf])")
            try:
                merge(preset_for(model), scene_params(name, model), where=f"params ({model})")
            except LfcompError as exc:
                stop(f"invalid config: scene {name}: {exc}")
    missing = [name for name in names if not os.path.exists(scene_path(name))]
    if missing:
        stop("\n".join(
            f"data of scene {name!r} not found at {scene_path(name)}: get it from "
            f"{scenes[name]['url']} ({scenes[name]['dataset']}) and put it there, or set "
            f"data_root or scenes.{name}.path in the config"
            for name in missing))
    return names


def ingest_args(name):
    """`lfcomp ingest` options of a scene."""
    scene = config["scenes"][name]
    args = ["--format", scene["format"]]
    for option in ("views", "crop", "size"):
        if option in scene:
            args += [f"--{option}", *map(str, scene[option])]
    return " ".join(args)


def qdlr_artifact(stage):
    """The path pattern of a QDLR stage's artifact (from the codec registry)."""
    return f"results/{{scene}}/{{model}}/{QDLR.stage(stage).artifact}"


def qdlr_log(stage, suffix="log"):
    """logs/{scene}/{model}/<the artifact's rate-point directories>/<stage>.<suffix>."""
    folder = os.path.dirname(QDLR.stage(stage).artifact)
    return os.path.join("logs/{scene}/{model}", folder, f"{stage}.{suffix}")


def read_parameters(stage, overrides):
    """The part of {section: {key: value}} that ``stage`` (a registry Stage) reads."""
    chosen = {}
    for entry in stage.sections:
        section, _, key = entry.partition(".")
        values = overrides.get(section, {})
        if key:
            if key in values:
                chosen.setdefault(section, {})[key] = values[key]
        elif values:
            chosen.setdefault(section, {}).update(values)
    return chosen


def set_options(stage, overrides):
    """`--set section.key=value` options of the overrides a stage reads."""
    return " ".join(
        f"--set {shlex.quote(f'{section}.{key}={json.dumps(value)}')}"
        for section, values in read_parameters(stage, overrides).items()
        for key, value in sorted(values.items()))


def stage_args(stage):
    """A params function: the `--set section.key=value` options of a QDLR stage for a scene."""

    def args(wildcards):
        return set_options(QDLR.stage(stage), scene_params(wildcards.scene, wildcards.model))

    return args


def stage_settings(stage):
    """A params function: a QDLR stage's resolved parameters (its preset's, then the overrides). The
    command resolves them itself from --preset and --set; they are params so that a change, in the
    config or in the preset's defaults, reruns the stage."""

    def settings(wildcards):
        resolved = merge(preset_for(wildcards.model), scene_params(wildcards.scene, wildcards.model))
        return read_parameters(QDLR.stage(stage), resolved.to_dict())

    return settings


def qdlr_point_path(scene, model, point, name):
    return f"results/{scene}/{model}/{QDLR.rate_point_dir(point)}/{name}"


def latent_points():
    """The latent codec's rate points in the order they are trained, lowest rate first: explicit
    λ values ({lmbda}, largest first) or targets ({target_bpp, fit}, smallest first); the config's
    for this preset, else the preset's own (its targets, else its λ values). Folders: l{λ}, t{bpp}."""
    chosen = chosen_rate_points("latent")
    if chosen is None:
        own = load_preset(config["preset"]).latent
        chosen = {"target_bpp": list(own.target_bpp)} if own.target_bpp else list(own.lambdas)
    if isinstance(chosen, dict):
        return [{"target_bpp": float(bpp), "fit": chosen.get("fit", "closest")}
                for bpp in sorted({float(bpp) for bpp in chosen["target_bpp"]})]
    return [{"lmbda": lmbda} for lmbda in sorted({float(lmbda) for lmbda in chosen}, reverse=True)]


def latent_dir(point):
    return LATENT.rate_point_dir(point)


def latent_path(scene, point, name):
    return f"results/{scene}/latent/{latent_dir(point)}/{name}"


def latent_log(stage, suffix="log"):
    return f"logs/{{scene}}/latent/{{point}}/{stage}.{suffix}"


def latent_point(wildcards):
    """The rate point of a latent job's {point} folder."""
    return next(point for point in LATENT_POINTS if latent_dir(point) == wildcards.point)


def latent_rate_args(wildcards):
    """`--lmbda λ`, or `--target-bpp bpp --fit f`, of a latent rate point."""
    point = latent_point(wildcards)
    if "lmbda" in point:
        return f"--lmbda {point['lmbda']}"
    return f"--target-bpp {point['target_bpp']} --fit {point['fit']}"


def latent_target(wildcards):
    """`--target-bpp` for the evaluation of a latent rate point made for a target."""
    point = latent_point(wildcards)
    return f"--target-bpp {point['target_bpp']}" if "target_bpp" in point else ""


def latent_fit_inputs(wildcards):
    """The light field, and the checkpoint of the previous (lower-rate) point to start from (none
    for the first)."""
    inputs = {"lf": f"results/{wildcards.scene}/lightfield.zarr"}
    dirs = [latent_dir(point) for point in LATENT_POINTS]
    if wildcards.point in dirs and dirs.index(wildcards.point) > 0:
        inputs["init"] = latent_path(wildcards.scene, LATENT_POINTS[dirs.index(wildcards.point) - 1], "latent.pt")
    return inputs


def latent_settings(wildcards):
    """The latent codec's resolved training parameters (params, so that a change reruns it)."""
    resolved = merge(load_preset(config["preset"]), scene_params(wildcards.scene))
    return read_parameters(LATENT.stage("latent-fit"), resolved.to_dict())


def latent_args(wildcards):
    """`--set` options of the latent codec's training."""
    return set_options(LATENT.stage("latent-fit"), scene_params(wildcards.scene))


def scene_metrics(name):
    """metrics.json of every codec (QDLR model kinds, then the other codecs) and rate point of a scene."""
    paths = [qdlr_point_path(name, model, point, "metrics.json")
             for model in MODELS for point in RATE_POINTS[name, model]]
    if "latent" in CODEC_NAMES:
        paths += [latent_path(name, point, "metrics.json") for point in LATENT_POINTS]
    return paths


def anchor_metrics(name):
    """metrics.json of every configured anchor and QP of a scene."""
    return [f"results/{name}/{anchor}/qp{qp}/metrics.json"
            for anchor, settings in config["anchors"].items() for qp in settings["qps"]]


def all_metrics():
    """Every codec's rate points over all selected scenes: the inputs of the report."""
    return [path for scene in SCENES for path in scene_metrics(scene) + anchor_metrics(scene)]


def bd_anchors():
    """The BD-PSNR references: the configured HEVC anchors of the whole light field (not the
    centre-view floor)."""
    return [name for name, settings in config["anchors"].items()
            if settings["codec"] == "hevc" and settings.get("scan", "serpentine") != "centre"]


def clip_target(name):
    """The free-viewpoint clip of each model kind and codec of a scene (none when clip_frames is 0)."""
    if config["clip_frames"] <= 0:
        return []
    return [f"results/{name}/{model}/free_viewpoint.gif" for model in [*MODELS, *CODEC_NAMES]]


def first_point_bitstream(wildcards):
    """The bitstream of a codec's first rate point (a model kind's, or the latent codec's lowest
    rate, trained first), which the free-viewpoint clip renders."""
    if wildcards.model == "latent":
        return latent_path(wildcards.scene, LATENT_POINTS[0], "bitstream.lfc")
    point = RATE_POINTS[wildcards.scene, wildcards.model][0]
    return qdlr_point_path(wildcards.scene, wildcards.model, point, "bitstream.lfc")
