# SOTA comparison, dynamic baselines (method.md §5 items 4–5; dance.sota.dynamic): FBS-style
# channel gating and learned frame skipping, one network per operating point, fine-tuned from
# the baseline for sota.epochs epochs, then one test-split record each (exact per-clip costs,
# batch-1 latency timed interleaved with the dense baseline). Record method names: fbs,
# frame_skip; config sections: sota.gating, sota.frame_skip.


wildcard_constraints:
    rname=one_of(dance_plan.DYNAMIC_METHOD),
    dmethod=one_of(dance_plan.DYNAMIC_RECORD),


use rule _train_job as train_dynamic with:
    input:
        baseline=PATHS.checkpoint("{model}", "baseline"),
        manifest=PATHS.manifest,
    output:
        checkpoint=PATHS.checkpoint(
            "{model}", dance_plan.dynamic_stage("{dmethod}", "{point}")
        ),
        history=PATHS.history(
            "{model}", dance_plan.dynamic_stage("{dmethod}", "{point}")
        ),
    log:
        LOGS / "train_dynamic_{model}_{dmethod}_{point}.log",
    params:
        identity=identity(lambda w: dance_plan.dynamic_stage(w.dmethod, w.point)),
        step=cli(
            "train-dynamic",
            "--model {wildcards.model}",
            "--method {wildcards.dmethod}",
            "--point {wildcards.point}",
        ),


# Written out, not `use rule _evaluate_job`: its command also sets bench.threads (jobs.smk).
rule evaluate_dynamic:
    input:
        checkpoint=dynamic_checkpoint,
        baseline=PATHS.checkpoint("{model}", "baseline"),
        baseline_eval=PATHS.evaluation("{model}", "baseline"),
    output:
        record=PATHS.sota_dynamic_record("{model}", "{rname}", "{point}"),
        clips=PATHS.sota_dynamic_clips("{model}", "{rname}", "{point}"),
    log:
        LOGS / "evaluate_dynamic_{model}_{rname}_{point}.log",
    conda:
        CONDA_ENV
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        fp=fp("energy", "bench"),
        method=lambda w: dance_plan.DYNAMIC_METHOD[w.rname],
        threads=lambda wildcards, threads: config["bench"]["threads"] or threads,
    shell:
        dance(
            "evaluate-dynamic",
            "--model {wildcards.model}",
            "--method {params.method}",
            "--point {wildcards.point}",
            "--set threads={threads}",
            "--set bench.threads={params.threads}",
        )
