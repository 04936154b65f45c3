# What every codec shares: the rate-point summaries per scene and over scenes, the paper's tables
# and figures over every selected scene and codec (results/summary/), the free-viewpoint clip of
# each scene, all gathered by `snakemake --report` into one HTML page.


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


rule report_tables:
    input:
        all_metrics(),
    output:
        rd=report("results/summary/rd.csv", category="Tables", caption="../report/rd.rst"),
        bd=report("results/summary/bd_psnr.md", category="Tables", caption="../report/bd_psnr.rst"),
        bd_csv="results/summary/bd_psnr.csv",
        stages=report("results/summary/stages.md", category="Tables", caption="../report/stages.rst"),
        stages_csv="results/summary/stages.csv",
    log:
        "logs/summary/report_tables.log",
    params:
        anchors=" ".join(bd_anchors()) or "hevc444",
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp report $(dirname {output.rd:q}) {input:q} --anchors {params.anchors} 2>> {log:q}"


rule figures:
    input:
        all_metrics(),
    output:
        report(directory("results/summary/figures"), patterns=["{figure}.png"], category="Figures",
               caption="../report/figures.rst"),
    log:
        "logs/summary/figures.log",
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp plots {output:q} {input:q} 2>> {log:q}"


rule clip:
    input:
        first_point_bitstream,
    output:
        report("results/{scene}/{model}/free_viewpoint.gif", category="Free viewpoint", caption="../report/clip.rst"),
    log:
        "logs/{scene}/{model}/clip.log",
    benchmark:
        "logs/{scene}/{model}/clip.benchmark.tsv"
    params:
        frames=config["clip_frames"],
        device=config["device"],
    threads: config["threads"]["stage"]
    resources:
        **job_resources("gpu"),  # renders like decode
    conda:
        "../envs/lfcomp.yaml"
    shell:
        "lfcomp clip {input:q} {output:q} --frames {params.frames} --device {params.device}"
        " --threads {threads} 2>> {log:q}"
