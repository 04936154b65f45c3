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
RATE_POINTS = {model: rate_points(model) for model in MODELS}
SCENES = selected_scenes()  # stops here, naming scene, path and URL, if any data is missing

wildcard_constraints:
    scene=r"[^/]+",
    model="|".join(MODEL_KINDS),
    qp=r"\d+",
    **{p.name: r"\d+" for p in QDLR.rate_parameters},  # r{rank}, n{centroids}


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
include: "rules/anchors.smk"
include: "rules/report.smk"
