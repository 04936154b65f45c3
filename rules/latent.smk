# The latent codec (lfcomp/codecs/latent/) at each λ (l{lmbda}): training on MSE + λ·rate, the largest
# λ from scratch and each smaller one from the model of the next larger one (more training where
# the quality is higher), then the range-coded bitstream, the views decoded
# from it and their metrics. Runs when `codecs:` lists latent.


rule latent_fit:
    input:
        unpack(latent_fit_inputs),
    output:
        "results/{scene}/latent/l{lmbda}/latent.pt",
    log:
        latent_log("latent-fit"),
    benchmark:
        latent_log("latent-fit", "benchmark.tsv")
    params:
        init=lambda wildcards, input: f"--init {shlex.quote(input.init)}" if "init" in input.keys() else "",
        overrides=latent_args,
        settings=latent_settings,
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["stage"]
    resources:
        **job_resources("gpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp latent-fit {input.lf:q} {output:q} --lmbda {wildcards.lmbda} {params.init}"
        " --preset {params.preset} {params.overrides} --device {params.device} --threads {threads} 2>> {log:q}"


rule latent_encode:
    input:
        model="results/{scene}/latent/l{lmbda}/latent.pt",
        lf="results/{scene}/lightfield.zarr",
    output:
        "results/{scene}/latent/l{lmbda}/bitstream.lfc",
    log:
        latent_log("latent-encode"),
    benchmark:
        latent_log("latent-encode", "benchmark.tsv")
    threads: 1
    resources:
        **job_resources("cpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp latent-encode {input.model:q} {input.lf:q} {output:q} 2>> {log:q}"


rule latent_decode:
    input:
        "results/{scene}/latent/l{lmbda}/bitstream.lfc",
    output:
        directory("results/{scene}/latent/l{lmbda}/decoded.zarr"),
    log:
        latent_log("decode"),
    benchmark:
        latent_log("decode", "benchmark.tsv")
    params:
        device=config["device"],
    threads: config["threads"]["stage"]
    resources:
        **job_resources("gpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp decode {input:q} {output:q} --device {params.device} --threads {threads} 2>> {log:q}"


rule latent_evaluate:
    input:
        ref="results/{scene}/lightfield.zarr",
        decoded="results/{scene}/latent/l{lmbda}/decoded.zarr",
        bitstream="results/{scene}/latent/l{lmbda}/bitstream.lfc",
        model="results/{scene}/latent/l{lmbda}/latent.pt",
    output:
        "results/{scene}/latent/l{lmbda}/metrics.json",
    log:
        latent_log("evaluate"),
    benchmark:
        latent_log("evaluate", "benchmark.tsv")
    threads: 1
    resources:
        **job_resources("cpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp evaluate {input.ref:q} {input.decoded:q} {output:q}"
        " --bitstream {input.bitstream:q} --model {input.model:q} --scene {wildcards.scene} 2>> {log:q}"
