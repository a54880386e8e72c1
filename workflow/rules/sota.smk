# State-of-the-art comparison (method.md §5): static L1 filter pruning (mild, aggressive),
# pruning-level selection (a selector head escalating from the aggressive to the mild net),
# one interleaved latency bench per model, the dense reference record, and the assembled
# comparison tables (DANCE and its ablations read from the AAP evaluations; other methods'
# operating-point records from {results_dir}/metrics/<model>/sota/).


wildcard_constraints:
    level=one_of(dance_plan.L1_LEVELS),


# The generic bench rule's bench_{stage}.csv pattern also matches bench_sota.csv.
ruleorder: bench_sota > bench


# Both L1-pruned nets of a model: what the selector routes between and the bench times.
L1_NETS = [
    PATHS.checkpoint("{model}", dance_plan.l1_stage(level))
    for level in dance_plan.L1_LEVELS
]


use rule _train_job as train_l1 with:
    input:
        baseline=PATHS.checkpoint("{model}", "baseline"),
        manifest=PATHS.manifest,
    output:
        checkpoint=PATHS.checkpoint("{model}", dance_plan.l1_stage("{level}")),
        history=PATHS.history("{model}", dance_plan.l1_stage("{level}")),
    log:
        LOGS / "train_l1_{model}_{level}.log",
    params:
        identity=identity(lambda w: dance_plan.l1_stage(w.level)),
        step=cli("train-l1", "--model {wildcards.model}", "--level {wildcards.level}"),


use rule _train_job as train_selector with:
    input:
        aggressive=PATHS.checkpoint("{model}", "l1_aggressive"),
    output:
        checkpoint=PATHS.sota_checkpoint("{model}", "selector"),
        history=PATHS.sota_history("{model}", "selector"),
    log:
        LOGS / "train_selector_{model}.log",
    params:
        identity=identity("selector"),
        step=cli("train-selector", "--model {wildcards.model}"),


use rule _bench_job as bench_sota with:
    input:
        manifest=PATHS.manifest,
        nets=L1_NETS,
        selector=PATHS.sota_checkpoint("{model}", "selector"),
    output:
        csv=PATHS.sota_bench("{model}"),
        detail=PATHS.sota_bench("{model}").with_suffix(".json"),
    log:
        LOGS / "bench_sota_{model}.log",
    params:
        fp=fp("bench"),
        step=cli("bench-sota", "--model {wildcards.model}"),


use rule _evaluate_job as evaluate_sota_dense with:
    input:
        checkpoint=PATHS.checkpoint("{model}", "baseline"),
        evaluation=PATHS.evaluation("{model}", "baseline"),
        bench=PATHS.sota_bench("{model}"),
    output:
        PATHS.sota_record("{model}", "dense", "dense"),
    log:
        LOGS / "evaluate_sota_dense_{model}.log",
    params:
        fp=fp("energy"),
        step=cli("evaluate-sota-dense", "--model {wildcards.model}"),


use rule _evaluate_job as evaluate_l1 with:
    input:
        checkpoint=PATHS.checkpoint("{model}", dance_plan.l1_stage("{level}")),
        evaluation=PATHS.evaluation("{model}", "baseline"),
        bench=PATHS.sota_bench("{model}"),
    output:
        PATHS.sota_record("{model}", "l1", "{level}"),
    log:
        LOGS / "evaluate_l1_{model}_{level}.log",
    params:
        fp=fp("energy"),
        step=cli(
            "evaluate-l1", "--model {wildcards.model}", "--level {wildcards.level}"
        ),


use rule _evaluate_job as evaluate_selector with:
    input:
        nets=L1_NETS,
        selector=PATHS.sota_checkpoint("{model}", "selector"),
        evaluation=PATHS.evaluation("{model}", "baseline"),
        bench=PATHS.sota_bench("{model}"),
    output:
        records=dance_plan.selector_records(config, "{model}"),
        routing=PATHS.sota_record("{model}", "selector", "x").with_name(
            "selector_routing.csv"
        ),
    log:
        LOGS / "evaluate_selector_{model}.log",
    params:
        fp=fp("energy", "sota"),
        step=cli("evaluate-selector", "--model {wildcards.model}"),


use rule _report_job as comparison with:
    input:
        records=dance_plan.comparison_records(config),
        dance=rules.dance_summary.input.evaluations,
        benches=rules.dance_summary.input.benches,
    output:
        csv=PATHS.comparison,
        md=PATHS.comparison.with_suffix(".md"),
        matched=PATHS.comparison_matched,
        literature=PATHS.comparison_literature,
    log:
        LOGS / "comparison.log",
    params:
        fp=fp("energy", "sota"),
        step=cli("comparison"),
