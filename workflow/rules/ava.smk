# Stage 2: AVA fine-tuning of each baseline, and the sparsity of its activations before/after.
# (Its test-split evaluation is the generic `evaluate` rule with stage=ava.)


rule train_ava:
    input:
        baseline=PATHS.checkpoint("{model}", "baseline"),
    output:
        checkpoint=PATHS.checkpoint("{model}", "ava"),
        history=PATHS.history("{model}", "ava"),
    log:
        LOGS / "train_ava_{model}.log",
    conda:
        CONDA_ENV
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    params:
        identity=identity("ava"),
    shell:
        dance("train-ava", "--model {wildcards.model}", "--set threads={threads}")


rule ava_stats:
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
    conda:
        CONDA_ENV
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    shell:
        dance("ava-stats", "--model {wildcards.model}", "--set threads={threads}")
