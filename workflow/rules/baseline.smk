# Stage 1: dense baselines, trained from scratch and evaluated on the test split.


rule train_baseline:
    input:
        manifest=PATHS.manifest,
    output:
        checkpoint=PATHS.checkpoint("{model}", "baseline"),
        history=PATHS.history("{model}", "baseline"),
    log:
        LOGS / "train_baseline_{model}.log",
    conda:
        CONDA_ENV
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    params:
        identity=identity("baseline"),
    shell:
        dance("train-baseline", "--model {wildcards.model}", "--set threads={threads}")


rule evaluate:
    input:
        checkpoint=PATHS.checkpoint("{model}", "{stage}"),
    output:
        metrics=PATHS.evaluation("{model}", "{stage}"),
        per_class=PATHS.metrics / "{model}" / "{stage}_per_class.csv",
        confusion=PATHS.metrics / "{model}" / "{stage}_confusion.csv",
    log:
        LOGS / "evaluate_{model}_{stage}.log",
    conda:
        CONDA_ENV
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    shell:
        dance(
            "evaluate",
            "--model {wildcards.model}",
            "--stage {wildcards.stage}",
            "--set threads={threads}",
        )
