# Data: read a scene's views, in whatever format the data set ships, into one zarr light field.


rule ingest:
    input:
        lambda wc: scene_path(wc.scene),
    output:
        directory("results/{scene}/lightfield.zarr"),
    log:
        "logs/{scene}/ingest.log",
    benchmark:
        "logs/{scene}/ingest.benchmark.tsv"
    params:
        options=lambda wc: ingest_args(wc.scene),
    threads: 1
    resources:
        **job_resources("cpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp ingest {input:q} {output:q} {params.options} --threads {threads} 2>> {log:q}"
