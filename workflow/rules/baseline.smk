# Stage 1: dense baselines, trained from scratch and evaluated on the test split.


use rule _train_job as train_baseline with:
    input:
        manifest=PATHS.manifest,
    output:
        checkpoint=PATHS.checkpoint("{model}", "baseline"),
        history=PATHS.history("{model}", "baseline"),
    log:
        LOGS / "train_baseline_{model}.log",
    params:
        identity=identity("baseline"),
        step=cli("train-baseline", "--model {wildcards.model}"),


use rule _evaluate_job as evaluate with:
    input:
        checkpoint=PATHS.checkpoint("{model}", "{stage}"),
    output:
        metrics=PATHS.evaluation("{model}", "{stage}"),
        per_class=PATHS.metrics / "{model}" / "{stage}_per_class.csv",
        confusion=PATHS.metrics / "{model}" / "{stage}_confusion.csv",
    log:
        LOGS / "evaluate_{model}_{stage}.log",
    params:
        step=cli("evaluate", "--model {wildcards.model}", "--stage {wildcards.stage}"),
