# The QDLR codec (Shi & Guillemot, ICASSP 2023) for each model kind ({model}: nerf or nelf): the
# original model, then per rank (r{rank}) and codebook size (n{centroids}) (given, or planned for a
# target bitrate before any training: lfcomp/codecs/qdlr/rate_model.py) low-rank ADMM training,
# tensor-train decomposition, distillation, quantisation, the bitstream, the views decoded from it
# and their metrics. Artifact paths and the parameter sections of each stage come from the codec
# registry (lfcomp/codecs/registry.py).


rule train:
    input:
        "results/{scene}/lightfield.zarr",
    output:
        qdlr_artifact("train"),
    log:
        qdlr_log("train"),
    benchmark:
        qdlr_log("train", "benchmark.tsv")
    params:
        overrides=stage_args("train"),
        settings=stage_settings("train"),
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["train"]
    priority: 2  # first: every rate point of its kind waits for it
    resources:
        **job_resources("train"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp train {input:q} {output:q} --preset {params.preset} --set model.kind={wildcards.model}"
        " {params.overrides} --device {params.device} --threads {threads} 2>> {log:q}"


rule lowrank:
    input:
        org=qdlr_artifact("train"),
        lf="results/{scene}/lightfield.zarr",
    output:
        qdlr_artifact("lowrank"),
    log:
        qdlr_log("lowrank"),
    benchmark:
        qdlr_log("lowrank", "benchmark.tsv")
    params:
        overrides=stage_args("lowrank"),
        settings=stage_settings("lowrank"),
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["stage"]
    priority: 1  # the training chain is the critical path: before anchors and the tails (encode, decode)
    resources:
        **job_resources("gpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp lowrank {input.org:q} {input.lf:q} {output:q} --rank {wildcards.rank}"
        " --preset {params.preset} {params.overrides} --device {params.device} --threads {threads} 2>> {log:q}"


rule decompose:
    input:
        qdlr_artifact("lowrank"),
    output:
        directory(qdlr_artifact("decompose")),
    log:
        qdlr_log("decompose"),
    benchmark:
        qdlr_log("decompose", "benchmark.tsv")
    threads: 1
    priority: 1  # as lowrank
    resources:
        **job_resources("cpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp decompose {input:q} {output:q} --rank {wildcards.rank} 2>> {log:q}"


rule distill:
    input:
        cores=qdlr_artifact("decompose"),
        lf="results/{scene}/lightfield.zarr",
    output:
        qdlr_artifact("distill"),
    log:
        qdlr_log("distill"),
    benchmark:
        qdlr_log("distill", "benchmark.tsv")
    params:
        overrides=stage_args("distill"),
        settings=stage_settings("distill"),
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["stage"]
    priority: 1  # as lowrank
    resources:
        **job_resources("gpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp distill {input.cores:q} {input.lf:q} {output:q} --preset {params.preset}"
        " {params.overrides} --device {params.device} --threads {threads} 2>> {log:q}"


rule quantize:
    input:
        dlr=qdlr_artifact("distill"),
        lf="results/{scene}/lightfield.zarr",
    output:
        qdlr=qdlr_artifact("quantize"),
        codebook="results/{scene}/{model}/r{rank}/n{centroids}/codebook.npy",
    log:
        qdlr_log("quantize"),
    benchmark:
        qdlr_log("quantize", "benchmark.tsv")
    params:
        overrides=stage_args("quantize"),
        settings=stage_settings("quantize"),
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["stage"]
    priority: 1  # as lowrank
    resources:
        **job_resources("gpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp quantize {input.dlr:q} {input.lf:q} {output.qdlr:q}"
        " --centroids {wildcards.centroids} --codebook {output.codebook:q}"
        " --preset {params.preset} {params.overrides} --device {params.device} --threads {threads} 2>> {log:q}"


rule encode:
    input:
        qdlr_artifact("quantize"),
    output:
        qdlr_artifact("encode"),
    log:
        qdlr_log("encode"),
    benchmark:
        qdlr_log("encode", "benchmark.tsv")
    threads: 1
    resources:
        **job_resources("cpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp encode {input:q} {output:q} 2>> {log:q}"


rule decode:
    input:
        qdlr_artifact("encode"),
    output:
        directory(qdlr_artifact("decode")),
    log:
        qdlr_log("decode"),
    benchmark:
        qdlr_log("decode", "benchmark.tsv")
    params:
        device=config["device"],
    threads: config["threads"]["stage"]
    resources:
        **job_resources("gpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp decode {input:q} {output:q} --device {params.device} --threads {threads} 2>> {log:q}"


rule evaluate:
    input:
        ref="results/{scene}/lightfield.zarr",
        decoded=qdlr_artifact("decode"),
        bitstream=qdlr_artifact("encode"),
        qdlr=qdlr_artifact("quantize"),
    output:
        qdlr_artifact("evaluate"),
    log:
        qdlr_log("evaluate"),
    benchmark:
        qdlr_log("evaluate", "benchmark.tsv")
    params:
        target=qdlr_target,
    threads: 1
    resources:
        **job_resources("cpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp evaluate {input.ref:q} {input.decoded:q} {output:q}"
        " --bitstream {input.bitstream:q} --model {input.qdlr:q} --scene {wildcards.scene} {params.target}"
        " 2>> {log:q}"
