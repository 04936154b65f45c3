# Classical anchors: each scene's views coded as a pseudo-video sequence by a video codec, one
# job per anchor and QP; the metrics have the same definition as the neural codec's.

from lfcomp.anchors.video import bitstream_name


for anchor_name, anchor in config["anchors"].items():

    rule:
        name:
            f"anchor_{anchor_name}"
        input:
            "results/{scene}/lightfield.zarr",
        output:
            bitstream=f"results/{{scene}}/{anchor_name}/qp{{qp}}/{bitstream_name(anchor['codec'])}",
            decoded=directory(f"results/{{scene}}/{anchor_name}/qp{{qp}}/decoded.zarr"),
            metrics=f"results/{{scene}}/{anchor_name}/qp{{qp}}/metrics.json",
        log:
            f"logs/{{scene}}/{anchor_name}/qp{{qp}}/anchor.log",
        benchmark:
            f"logs/{{scene}}/{anchor_name}/qp{{qp}}/anchor.benchmark.tsv"
        params:
            codec=anchor["codec"],
            chroma=anchor["chroma"],
            scan=anchor.get("scan", "serpentine"),
        threads: 1
        resources:
            **job_resources("anchor"),
        conda:
            "../envs/lfcomp.yaml"
        shell:
            "lfcomp anchor {input:q} $(dirname {output.metrics:q}) --codec {params.codec}"
            " --chroma {params.chroma} --qp {wildcards.qp} --scan {params.scan}"
            " --scene {wildcards.scene} 2>> {log:q}"
