# Stage 3: AAP controllers (one per model × variant × operating point), their test-split
# evaluation, one interleaved latency bench per model (dense vs every point) and the summary,
# and the per-layer latency table a latency-aware controller (aap.cost: latency) trains against.
# Variants: dance (AVA backbone), no_ava (baseline backbone), frames/channels/features (one
# pruned dimension). Which (variant, point) pairs are trained: dance.plan.aap_pairs.


wildcard_constraints:
    variant=one_of(AAP_BACKBONE),
    point=r"\d+",


# The generic evaluate/bench rules' {model}/{stage} patterns also match these files.
ruleorder: evaluate_aap > evaluate
ruleorder: bench_aap > bench


use rule _bench_job as latency_table with:
    input:
        manifest=PATHS.manifest,
    output:
        csv=PATHS.latency_table("{model}"),
        conditions=PATHS.latency_table("{model}").with_suffix(".json"),
    log:
        LOGS / "latency_table_{model}.log",
    params:
        fp=fp(
            "seed",
            "dataset",
            "model",
            "bench",
            "aap.latency_table",
            "aap.channel_multiple",
            "aap.min_frames",
        ),
        step=cli("latency-table", "--model {wildcards.model}"),


use rule _train_job as train_aap with:
    input:
        backbone=aap_backbone,
        manifest=PATHS.manifest,
        # the measured table the controller trains against and its conditions (aap.cost:
        # latency)
        latency=lambda w: (
            [
                PATHS.training_latency_table(w.model),
                PATHS.training_latency_table(w.model).with_suffix(".json"),
            ]
            if config["aap"]["cost"] == "latency"
            else []
        ),
    output:
        checkpoint=PATHS.aap_checkpoint("{model}", "{variant}", "{point}"),
        history=PATHS.aap_history("{model}", "{variant}", "{point}"),
    log:
        LOGS / "train_aap_{model}_{variant}_{point}.log",
    params:
        identity=identity(lambda w: aap_stage(w.variant, w.point)),
        step=cli(
            "train-aap",
            "--model {wildcards.model}",
            "--variant {wildcards.variant}",
            "--point {wildcards.point}",
        ),


use rule _evaluate_job as evaluate_aap with:
    input:
        checkpoint=PATHS.aap_checkpoint("{model}", "{variant}", "{point}"),
        baseline_eval=PATHS.evaluation("{model}", "baseline"),
        backbone_eval=aap_backbone_eval,
    output:
        metrics=PATHS.aap_eval("{model}", "{variant}", "{point}"),
        decisions=PATHS.aap_decisions("{model}", "{variant}", "{point}"),
        masks=PATHS.aap_masks("{model}", "{variant}", "{point}"),
    log:
        LOGS / "evaluate_aap_{model}_{variant}_{point}.log",
    params:
        fp=fp("energy"),
        step=cli(
            "evaluate-aap",
            "--model {wildcards.model}",
            "--variant {wildcards.variant}",
            "--point {wildcards.point}",
        ),


use rule _bench_job as bench_aap with:
    input:
        manifest=PATHS.manifest,
        checkpoints=lambda w: [
            PATHS.aap_checkpoint(w.model, v, k)
            for v, k in dance_plan.aap_pairs(config)
        ],
        evaluations=lambda w: [
            PATHS.aap_eval(w.model, v, k) for v, k in dance_plan.aap_pairs(config)
        ],
    output:
        csv=PATHS.aap_bench("{model}"),
        detail=PATHS.aap_bench("{model}").with_suffix(".json"),
    log:
        LOGS / "bench_aap_{model}.log",
    params:
        fp=fp("bench"),
        step=cli("bench-aap", "--model {wildcards.model}"),


use rule _report_job as dance_summary with:
    input:
        evaluations=[
            PATHS.aap_eval(m, v, k)
            for m in config["models"]
            for v, k in dance_plan.aap_pairs(config)
        ],
        benches=expand(PATHS.aap_bench("{model}"), model=config["models"]),
    output:
        csv=PATHS.dance_summary,
        md=PATHS.dance_summary.with_suffix(".md"),
        terms=PATHS.dance_difficulty_terms,
        terms_md=PATHS.dance_difficulty_terms.with_suffix(".md"),
    log:
        LOGS / "dance_summary.log",
    params:
        step=cli("dance-summary"),
