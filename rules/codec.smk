# Codec: the quantised model entropy-coded into a bitstream, and the light field rendered back
# from that bitstream alone.


rule encode:
    input:
        "results/{scene}/{model}/r{rank}/n{centroids}/qdlr_{model}.pt",
    output:
        "results/{scene}/{model}/r{rank}/n{centroids}/bitstream.lfc",
    log:
        "logs/{scene}/{model}/r{rank}/n{centroids}/encode.log",
    benchmark:
        "logs/{scene}/{model}/r{rank}/n{centroids}/encode.benchmark.tsv"
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
        "lfcomp encode {input:q} {output:q} --preset {params.preset} --device {params.device}"
        " --threads {threads} 2>> {log:q}"


rule decode:
    input:
        "results/{scene}/{model}/r{rank}/n{centroids}/bitstream.lfc",
    output:
        directory("results/{scene}/{model}/r{rank}/n{centroids}/decoded.zarr"),
    log:
        "logs/{scene}/{model}/r{rank}/n{centroids}/decode.log",
    benchmark:
        "logs/{scene}/{model}/r{rank}/n{centroids}/decode.benchmark.tsv"
    params:
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
        "lfcomp decode {input:q} {output:q} --preset {params.preset} --device {params.device}"
        " --threads {threads} 2>> {log:q}"
