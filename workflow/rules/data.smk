# Stage 0: the data set (generated, or decoded from UCF101/HMDB51) and its sample figure.


rule prepare_data:
    output:
        manifest=PATHS.manifest,
    log:
        LOGS / "prepare_data.log",
    conda:
        CONDA_ENV
    threads: job_threads("data")
    resources:
        **job_resources("data"),
    params:
        fp=fp("seed", "dataset"),
    shell:
        dance("prepare-data")


rule plot_samples:
    input:
        manifest=PATHS.manifest,
        code="src/dance/report/figures/samples.py",
    output:
        png=report(
            PATHS.figure("dataset_samples", "png"),
            caption="../report/dataset_samples.rst",
            category="Figures",
        ),
        pdf=PATHS.figure("dataset_samples", "pdf"),
        csv=PATHS.figure("dataset_samples", "csv"),
    log:
        LOGS / "plot_samples.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    shell:
        dance("plot-samples")
