# Stage 0: the data set (generated, or decoded from UCF101/HMDB51) and its sample figure.


use rule _data_job as prepare_data with:
    output:
        manifest=PATHS.manifest,
    log:
        LOGS / "prepare_data.log",
    params:
        fp=fp("seed", "dataset"),
        step=cli("prepare-data"),


use rule _report_job as plot_samples with:
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
    params:
        step=cli("plot-samples"),
