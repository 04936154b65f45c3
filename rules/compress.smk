# Compression of a model kind's original model ({model}: nerf or nelf) for one rank (r{rank}) and one
# codebook size (n{centroids}): low-rank ADMM training, tensor-train decomposition, distillation
# with fine-tuning, quantisation.


rule lowrank:
    input:
        org="results/{scene}/{model}/{model}.pt",
        lf="results/{scene}/lightfield.zarr",
    output:
        "results/{scene}/{model}/r{rank}/lr_{model}.pt",
    log:
        "logs/{scene}/{model}/r{rank}/lowrank.log",
    benchmark:
        "logs/{scene}/{model}/r{rank}/lowrank.benchmark.tsv"
    params:
        overrides=stage_args("lowrank"),
        settings=stage_settings("lowrank"),
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["stage"]
    resources:
        mem_mb=RUNTIME["mem_mb"],
        runtime=RUNTIME["stage_minutes"],
        gpu=RUNTIME["gpus"],  # sbatch --gpus on a cluster; ignored by local --cores runs
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp lowrank {input.org:q} {input.lf:q} {output:q} --rank {wildcards.rank}"
        " --preset {params.preset} {params.overrides} --device {params.device}"
        " --threads {threads} 2>> {log:q}"


rule decompose:
    input:
        "results/{scene}/{model}/r{rank}/lr_{model}.pt",
    output:
        directory("results/{scene}/{model}/r{rank}/tt_cores.zarr"),
    log:
        "logs/{scene}/{model}/r{rank}/decompose.log",
    benchmark:
        "logs/{scene}/{model}/r{rank}/decompose.benchmark.tsv"
    params:
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["stage"]
    resources:
        mem_mb=RUNTIME["cpu_mem_mb"],
        runtime=RUNTIME["cpu_minutes"],
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp decompose {input:q} {output:q} --rank {wildcards.rank} --preset {params.preset}"
        " --device {params.device} --threads {threads} 2>> {log:q}"


rule distill:
    input:
        cores="results/{scene}/{model}/r{rank}/tt_cores.zarr",
        lf="results/{scene}/lightfield.zarr",
    output:
        "results/{scene}/{model}/r{rank}/dlr_{model}.pt",
    log:
        "logs/{scene}/{model}/r{rank}/distill.log",
    benchmark:
        "logs/{scene}/{model}/r{rank}/distill.benchmark.tsv"
    params:
        overrides=stage_args("distill"),
        settings=stage_settings("distill"),
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["stage"]
    resources:
        mem_mb=RUNTIME["mem_mb"],
        runtime=RUNTIME["stage_minutes"],
        gpu=RUNTIME["gpus"],  # sbatch --gpus on a cluster; ignored by local --cores runs
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp distill {input.cores:q} {input.lf:q} {output:q} --preset {params.preset}"
        " {params.overrides} --device {params.device} --threads {threads}"
        " 2>> {log:q}"


rule quantize:
    input:
        dlr="results/{scene}/{model}/r{rank}/dlr_{model}.pt",
        lf="results/{scene}/lightfield.zarr",
    output:
        qdlr="results/{scene}/{model}/r{rank}/n{centroids}/qdlr_{model}.pt",
        codebook="results/{scene}/{model}/r{rank}/n{centroids}/codebook.npy",
    log:
        "logs/{scene}/{model}/r{rank}/n{centroids}/quantize.log",
    benchmark:
        "logs/{scene}/{model}/r{rank}/n{centroids}/quantize.benchmark.tsv"
    params:
        overrides=stage_args("quantize"),
        settings=stage_settings("quantize"),
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["stage"]
    resources:
        mem_mb=RUNTIME["mem_mb"],
        runtime=RUNTIME["stage_minutes"],
        gpu=RUNTIME["gpus"],  # sbatch --gpus on a cluster; ignored by local --cores runs
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp quantize {input.dlr:q} {input.lf:q} {output.qdlr:q}"
        " --centroids {wildcards.centroids} --codebook {output.codebook:q}"
        " --preset {params.preset} {params.overrides} --device {params.device}"
        " --threads {threads} 2>> {log:q}"
