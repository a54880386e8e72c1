# Measurement: dense per-layer cost profile of every model, and host latency/energy benches.
# Latency runs take every core (threads: workflow.cores) so that no other job of the
# workflow runs beside them and disturbs the timings.


rule profile:
    input:
        manifest=PATHS.manifest,
        checkpoints=expand(
            PATHS.checkpoint("{model}", "baseline"), model=config["models"]
        ),
    output:
        layers=PATHS.profile_layers,
        summary=PATHS.profile_summary,
    log:
        LOGS / "profile.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        fp=fp("models", "dataset", "model", "energy"),
    shell:
        dance("profile")


rule bench:
    input:
        manifest=PATHS.manifest,
        checkpoint=PATHS.checkpoint("{model}", "{stage}"),
    output:
        csv=PATHS.bench("{model}", "{stage}"),
        detail=PATHS.bench("{model}", "{stage}").with_suffix(".json"),
    log:
        LOGS / "bench_{model}_{stage}.log",
    conda:
        CONDA_ENV
    threads: job_threads("bench")
    resources:
        **job_resources("bench"),
    params:
        fp=fp("bench"),
        # bench.threads = 0 means every core the job is given
        threads=lambda wildcards, threads: config["bench"]["threads"] or threads,
    shell:
        dance(
            "bench",
            "--model {wildcards.model}",
            "--stage {wildcards.stage}",
            "--set bench.threads={params.threads}",
        )
