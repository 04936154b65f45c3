# NeRF-org (or NeLF-org for model nelf): the original model trained on a scene's views (with its
# camera), the start of every rate point's chain of that model kind.


rule train:
    input:
        "results/{scene}/lightfield.zarr",
    output:
        "results/{scene}/{model}/{model}.pt",
    log:
        "logs/{scene}/{model}/train.log",
    benchmark:
        "logs/{scene}/{model}/train.benchmark.tsv"
    params:
        overrides=stage_args("train"),
        settings=stage_settings("train"),
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["train"]
    resources:
        mem_mb=RUNTIME["mem_mb"],
        runtime=RUNTIME["train_minutes"],
        gpu=RUNTIME["gpus"],  # sbatch --gpus on a cluster; ignored by local --cores runs
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp train {input:q} {output:q} --preset {params.preset} --set model.kind={wildcards.model}"
        " {params.overrides}"
        " --device {params.device} --threads {threads} 2>> {log:q}"
