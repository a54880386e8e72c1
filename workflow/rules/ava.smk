# Stage 2: AVA fine-tuning of each baseline, and the sparsity of its activations before/after.
# (Its test-split evaluation is the generic `evaluate` rule with stage=ava.)


use rule _train_job as train_ava with:
    input:
        baseline=PATHS.checkpoint("{model}", "baseline"),
    output:
        checkpoint=PATHS.checkpoint("{model}", "ava"),
        history=PATHS.history("{model}", "ava"),
    log:
        LOGS / "train_ava_{model}.log",
    params:
        identity=identity("ava"),
        step=cli("train-ava", "--model {wildcards.model}"),


use rule _evaluate_job as ava_stats with:
    input:
        baseline=PATHS.checkpoint("{model}", "baseline"),
        ava=PATHS.checkpoint("{model}", "ava"),
        baseline_eval=PATHS.evaluation("{model}", "baseline"),
        ava_eval=PATHS.evaluation("{model}", "ava"),
    output:
        sparsity=PATHS.ava_sparsity("{model}"),
        profiles=PATHS.ava_profiles("{model}"),
        summary=PATHS.ava_summary("{model}"),
    log:
        LOGS / "ava_stats_{model}.log",
    params:
        step=cli("ava-stats", "--model {wildcards.model}"),
