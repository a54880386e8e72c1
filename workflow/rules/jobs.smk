# Job templates: what every `python -m dance` step of one kind of job (config `resources`:
# data, train, evaluate, bench, report) shares, written once: its software, threads, cluster
# resources and shell line. A rule of the workflow is made from one with
#     use rule _train_job as train_baseline with:
#         input: ..., output: ..., log: ..., params: step=cli("train-baseline", ...)
# `use rule` can replace every directive but `shell:`, so a rule's command comes as
# `params.step` (common.smk `cli`: the command, its config and arguments, the job's wildcards
# filled in), and the template adds the arguments of its kind (`--set threads=...`).
# A template has no output, so it is no job of the DAG; its own log is never written and its
# `step` refuses to run. Not made from a template: `all`, the device runs (jetson_nano,
# snapdragon: local, a device resource, no threads), evaluate_dynamic (its command sets
# threads and bench.threads, and its --method is a param) and the paper's table/figure rules
# (made in a loop, which `use rule` cannot name; they share one shell line, ARTIFACT_CMD).


rule _data_job:
    log:
        LOGS / "_data_job.log",
    conda:
        CONDA_ENV
    threads: job_threads("data")
    resources:
        **job_resources("data"),
    params:
        step=template_only,
    shell:
        run_step("{params.step}")


rule _train_job:
    log:
        LOGS / "_train_job.log",
    conda:
        CONDA_ENV
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    params:
        step=template_only,
    shell:
        run_step("{params.step}", "--set threads={threads}")


rule _evaluate_job:
    log:
        LOGS / "_evaluate_job.log",
    conda:
        CONDA_ENV
    threads: job_threads("evaluate")
    resources:
        **job_resources("evaluate"),
    params:
        step=template_only,
    shell:
        run_step("{params.step}", "--set threads={threads}")


rule _bench_job:
    log:
        LOGS / "_bench_job.log",
    conda:
        CONDA_ENV
    threads: job_threads("bench")
    resources:
        **job_resources("bench"),
    params:
        step=template_only,
        # bench.threads = 0 means every core the job is given
        threads=lambda wildcards, threads: config["bench"]["threads"] or threads,
    shell:
        run_step("{params.step}", "--set bench.threads={params.threads}")


rule _report_job:
    log:
        LOGS / "_report_job.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        step=template_only,
    shell:
        run_step("{params.step}")
