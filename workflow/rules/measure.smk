# Measurement: dense per-layer cost profile of every model, and host latency/energy benches.
# Latency runs take every core (threads: workflow.cores) so that no other job of the
# workflow runs beside them and disturbs the timings.


use rule _report_job as profile with:
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
    params:
        fp=fp("models", "dataset", "model", "energy"),
        step=cli("profile"),


use rule _bench_job as bench with:
    input:
        manifest=PATHS.manifest,
        checkpoint=PATHS.checkpoint("{model}", "{stage}"),
    output:
        csv=PATHS.bench("{model}", "{stage}"),
        detail=PATHS.bench("{model}", "{stage}").with_suffix(".json"),
    log:
        LOGS / "bench_{model}_{stage}.log",
    params:
        fp=fp("bench"),
        step=cli("bench", "--model {wildcards.model}", "--stage {wildcards.stage}"),
