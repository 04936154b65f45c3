"""lfcomp: light field compression, one rule per stage of each codec (rules/qdlr.smk: the paper's
QDLR codec, Shi & Guillemot, ICASSP 2023), the anchors and the reports.

    make run                                     # embedded scene, quick preset (see README.md)
    snakemake --profile profiles/local --config preset=paper run=paper

Artifacts: results/{scene}/{model}/... per model kind (nerf, nelf) and results/{scene}/{anchor}/...
per classical anchor; logs and per-rule benchmarks: logs/{scene}/....
"""

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


try:
    validate(config, "schemas/config.schema.yaml")
except WorkflowError as exc:
    stop(f"invalid config: {validation_message(exc)}")

PRESET = config["preset"]
RUNTIME = load_preset(PRESET).runtime
MODELS = list(dict.fromkeys(config["models"]))  # each model kind is a codec: results/{scene}/{model}/
CODEC_NAMES = list(dict.fromkeys(config["codecs"]))  # other codecs: results/{scene}/{codec}/
SCENES = selected_scenes()  # stops here, naming scene, path and URL, if any data is missing
# Each scene's QDLR rate points per model kind: targets planned for its size, or explicit pairs.
RATE_POINTS = {(scene, model): rate_points(scene, model) for scene in SCENES for model in MODELS}
LATENT_POINTS = latent_points()

wildcard_constraints:
    scene=r"[^/]+",
    model="|".join([*MODEL_KINDS, *(name for name, codec in CODECS.items() if not codec.model_kinds)]),
    qp=r"\d+",
    # rate-point parameters of every codec: r{rank}, n{centroids} (integers), l{lmbda} (a number);
    # a latent rate point's folder: l{lmbda} or t{target_bpp}
    **{p.name: r"\d+" if p.type is int else r"[0-9.eE+-]+" for c in CODECS.values() for p in c.rate_parameters},
    point=r"[lt][0-9.eE+-]+",


localrules:
    all,
    summarize_scene,
    summarize_all,
    report_tables,
    figures,


rule all:
    input:
        expand("results/{scene}/summary.md", scene=SCENES),
        "results/summary.md",
        "results/summary/bd_psnr.md",
        "results/summary/stages.md",
        "results/summary/figures",
        [clip for scene in SCENES for clip in clip_target(scene)],
    default_target: True


include: "rules/data.smk"
include: "rules/qdlr.smk"
include: "rules/latent.smk"
include: "rules/anchors.smk"
include: "rules/report.smk"
