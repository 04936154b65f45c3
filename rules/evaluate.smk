# Evaluation: PSNR of the decoded views against the ingested ones, the rate in bits per pixel,
# and the rate-point tables, per scene and over all scenes.


rule evaluate:
    input:
        ref="results/{scene}/lightfield.zarr",
        decoded="results/{scene}/{model}/r{rank}/n{centroids}/decoded.zarr",
        bitstream="results/{scene}/{model}/r{rank}/n{centroids}/bitstream.lfc",
        qdlr="results/{scene}/{model}/r{rank}/n{centroids}/qdlr_{model}.pt",
    output:
        "results/{scene}/{model}/r{rank}/n{centroids}/metrics.json",
    log:
        "logs/{scene}/{model}/r{rank}/n{centroids}/evaluate.log",
    benchmark:
        "logs/{scene}/{model}/r{rank}/n{centroids}/evaluate.benchmark.tsv"
    params:
        preset=PRESET,
        device=config["device"],
    threads: 1
    resources:
        mem_mb=RUNTIME["cpu_mem_mb"],
        runtime=RUNTIME["cpu_minutes"],
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp evaluate {input.ref:q} {input.decoded:q} {output:q}"
        " --bitstream {input.bitstream:q} --model {input.qdlr:q} --scene {wildcards.scene} --preset {params.preset}"
        " --device {params.device} --threads {threads} 2>> {log:q}"


rule summarize_scene:
    input:
        lambda wc: scene_metrics(wc.scene),
    output:
        csv="results/{scene}/summary.csv",
        md="results/{scene}/summary.md",
    log:
        "logs/{scene}/summarize.log",
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp summarize {output.csv:q} {output.md:q} {input:q} 2>> {log:q}"


rule summarize_all:
    input:
        [path for scene in SCENES for path in scene_metrics(scene)],
    output:
        csv="results/summary.csv",
        md="results/summary.md",
    log:
        "logs/summarize.log",
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp summarize {output.csv:q} {output.md:q} {input:q} 2>> {log:q}"
