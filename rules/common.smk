# Helpers that turn the validated config into what the rules need. No rules here.

import json
import os
import shlex
import sys

from lfcomp.errors import LfcompError
from lfcomp.config.presets import MODEL_KINDS, apply_overrides, load_preset, with_kind

# Each stage gets only the parameter sections it uses, so that a changed parameter reruns only
# the stage it belongs to (and what depends on it), through Snakemake's params trigger.
SECTIONS = {
    "train": ("model", "camera", "train"),
    "lowrank": ("lowrank",),
    "distill": ("distill",),
    "quantize": ("quantize",),
}

# Jobs call the `lfcomp` installed beside the Python that runs Snakemake (e.g. .venv/bin), also
# when that environment is not activated. (With --sdm conda, the rule's environment comes first.)
_bin, _path = os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)
if _path.split(os.pathsep)[0] != _bin:
    os.environ.update(PATH=os.pathsep.join([_bin, _path]))

# OpenMP threads that spin while waiting make two torch jobs sharing the cores many times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def stop(message):
    """End the run before any job starts, with one message and no traceback."""
    sys.exit(f"lfcomp workflow: {message}")


def validation_message(exc):
    """One line naming the offending key from snakemake.utils.validate's WorkflowError."""
    error = exc.__context__
    if not hasattr(error, "absolute_path"):  # not a jsonschema.ValidationError
        return str(exc).strip().splitlines()[-1]
    where = ".".join(str(part) for part in error.absolute_path) or "top level"
    sources = [str(f) for f in workflow.configfiles]
    sources += ["--config"] if workflow.config_settings.config else []
    return f"{', '.join(sources)}: {where}: {error.message}"


def preset_for(model):
    """The run's preset as written for a model kind (its `variants` block applied)."""
    return with_kind(load_preset(config["preset"]), model, where=f"models: {model}")


def rate_points(model):
    """A model's [rank, centroids] pairs: the config's for this preset and model, else the
    preset's own for that model."""
    chosen = config["rate_points"].get(config["preset"], {}).get(model) or preset_for(model)["rate_points"]
    return list(dict.fromkeys((int(rank), int(centroids)) for rank, centroids in chosen))


def scene_params(name, model):
    """Stage parameter overrides of a scene and model: the global ones, the global ones of the
    model (params.<model>), then the scene's own in the same order."""
    merged = {}
    for source in (config["params"], config["scenes"][name].get("params", {})):
        for block in (source, source.get(model, {})):
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
                apply_overrides(preset_for(model), scene_params(name, model), where=f"params ({model})")
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


def stage_args(stage):
    """A params function: the `--set section.key=value` options of a stage for a scene."""

    def args(wildcards):
        overrides = scene_params(wildcards.scene, wildcards.model)
        return " ".join(
            f"--set {shlex.quote(f'{section}.{key}={json.dumps(value)}')}"
            for section in SECTIONS[stage]
            for key, value in sorted(overrides.get(section, {}).items()))

    return args


def stage_settings(stage):
    """A params function: a stage's resolved parameters (its preset's, then the overrides). The
    command resolves them itself from --preset and --set; they are params so that a change, in the
    config or in the preset's defaults, reruns the stage."""

    def settings(wildcards):
        resolved = apply_overrides(preset_for(wildcards.model), scene_params(wildcards.scene, wildcards.model))
        return {section: resolved[section] for section in SECTIONS[stage]}

    return settings


def scene_metrics(name):
    """metrics.json of every model kind and rate point of a scene."""
    return [f"results/{name}/{model}/r{rank}/n{centroids}/metrics.json"
            for model in MODELS for rank, centroids in RATE_POINTS[model]]


def anchor_metrics(name):
    """metrics.json of every configured anchor and QP of a scene."""
    return [f"results/{name}/{anchor}/qp{qp}/metrics.json"
            for anchor, settings in config["anchors"].items() for qp in settings["qps"]]


def all_metrics():
    """Every codec's rate points over all selected scenes: the inputs of the report."""
    return [path for scene in SCENES for path in scene_metrics(scene) + anchor_metrics(scene)]


def bd_anchors():
    """The BD-PSNR references: the configured HEVC anchors."""
    return [name for name, settings in config["anchors"].items() if settings["codec"] == "hevc"]


def clip_target(name):
    """The free-viewpoint clip of each model kind of a scene (none when clip_frames is 0)."""
    if config["clip_frames"] <= 0:
        return []
    return [f"results/{name}/{model}/free_viewpoint.gif" for model in MODELS]


def first_point_bitstream(wildcards):
    """The bitstream of a model's first rate point, which the free-viewpoint clip renders."""
    rank, centroids = RATE_POINTS[wildcards.model][0]
    return f"results/{wildcards.scene}/{wildcards.model}/r{rank}/n{centroids}/bitstream.lfc"
