# The latent codec (lfcomp/codecs/latent/) at each rate point ({point}: l{λ} for an explicit λ,
# t{bpp} for a target bitrate, whose λ the fit searches): training on MSE + λ·rate, the lowest rate
# from scratch and each higher one from the model of the one before (more training where the
# quality is higher), then the range-coded bitstream, the views decoded from it and their metrics.
# Runs when `codecs:` lists latent.


rule latent_fit:
    input:
        unpack(latent_fit_inputs),
    output:
        "results/{scene}/latent/{point}/latent.pt",
    log:
        latent_log("latent-fit"),
    benchmark:
        latent_log("latent-fit", "benchmark.tsv")
    params:
        rate=latent_rate_args,
        init=lambda wildcards, input: f"--init {shlex.quote(input.init)}" if "init" in input.keys() else "",
        overrides=latent_args,
        settings=latent_settings,
        preset=PRESET,
        device=config["device"],
    threads: config["threads"]["stage"]
    priority: 1  # the λ searches run one after another (each warm-starts the next): start them early
    resources:
        **job_resources("gpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp latent-fit {input.lf:q} {output:q} {params.rate} {params.init}"
        " --preset {params.preset} {params.overrides} --device {params.device} --threads {threads} 2>> {log:q}"


rule latent_encode:
    input:
        model="results/{scene}/latent/{point}/latent.pt",
        lf="results/{scene}/lightfield.zarr",
    output:
        "results/{scene}/latent/{point}/bitstream.lfc",
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
        "results/{scene}/latent/{point}/bitstream.lfc",
    output:
        directory("results/{scene}/latent/{point}/decoded.zarr"),
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
        decoded="results/{scene}/latent/{point}/decoded.zarr",
        bitstream="results/{scene}/latent/{point}/bitstream.lfc",
        model="results/{scene}/latent/{point}/latent.pt",
    output:
        "results/{scene}/latent/{point}/metrics.json",
    log:
        latent_log("evaluate"),
    benchmark:
        latent_log("evaluate", "benchmark.tsv")
    params:
        target=latent_target,
    threads: 1
    resources:
        **job_resources("cpu"),
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp evaluate {input.ref:q} {input.decoded:q} {output:q}"
        " --bitstream {input.bitstream:q} --model {input.model:q} --scene {wildcards.scene} {params.target}"
        " 2>> {log:q}"
