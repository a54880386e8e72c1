# Stage 3: AAP controllers (one per model × variant × operating point), their test-split
# evaluation, one interleaved latency bench per model (dense vs every point) and the summary.
# Variants: dance (AVA backbone), no_ava (baseline backbone), frames/channels/features (one
# pruned dimension). DANCE runs at every aap.points entry, ablations at aap.ablation_points.


def aap_points():
    """(variant, point) pairs the workflow trains (mirrors dance.train.aap.trained_points)."""
    n = len(config["aap"]["points"])
    pairs = [("dance", k) for k in range(n)]
    pairs += [(v, k) for v in config["aap"]["ablations"] for k in config["aap"]["ablation_points"]
              if k < n]
    return pairs


def aap_backbone(wildcards):
    stage = "baseline" if wildcards.variant == "no_ava" else "ava"
    return PATHS.checkpoint(wildcards.model, stage)


def aap_backbone_eval(wildcards):
    stage = "baseline" if wildcards.variant == "no_ava" else "ava"
    return PATHS.evaluation(wildcards.model, stage)


def aap_fp(wildcards):
    sections = ["seed", "dataset", "model", "train", "aap"]
    if wildcards.variant != "no_ava":
        sections.append("ava")
    return fp(*sections)


wildcard_constraints:
    variant="dance|no_ava|frames|channels|features",
    point=r"\d+",


# The generic evaluate/bench rules' {model}/{stage} patterns also match these files.
ruleorder: evaluate_aap > evaluate
ruleorder: bench_aap > bench


rule train_aap:
    input:
        backbone=aap_backbone,
        manifest=PATHS.manifest,
    output:
        checkpoint=PATHS.aap_checkpoint("{model}", "{variant}", "{point}"),
        history=PATHS.aap_history("{model}", "{variant}", "{point}"),
    params:
        fp=aap_fp,
    threads: workflow.cores
    log:
        LOGS / "train_aap_{model}_{variant}_{point}.log",
    shell:
        dance("train-aap", "--model {wildcards.model}", "--variant {wildcards.variant}",
              "--point {wildcards.point}", "--set threads={threads}")


rule evaluate_aap:
    input:
        checkpoint=PATHS.aap_checkpoint("{model}", "{variant}", "{point}"),
        baseline_eval=PATHS.evaluation("{model}", "baseline"),
        backbone_eval=aap_backbone_eval,
    output:
        metrics=PATHS.aap_eval("{model}", "{variant}", "{point}"),
        decisions=PATHS.aap_decisions("{model}", "{variant}", "{point}"),
        masks=PATHS.aap_masks("{model}", "{variant}", "{point}"),
    params:
        fp=fp("energy"),
    threads: workflow.cores
    log:
        LOGS / "evaluate_aap_{model}_{variant}_{point}.log",
    shell:
        dance("evaluate-aap", "--model {wildcards.model}", "--variant {wildcards.variant}",
              "--point {wildcards.point}", "--set threads={threads}")


rule bench_aap:
    input:
        manifest=PATHS.manifest,
        checkpoints=lambda w: [PATHS.aap_checkpoint(w.model, v, k) for v, k in aap_points()],
        evaluations=lambda w: [PATHS.aap_eval(w.model, v, k) for v, k in aap_points()],
    output:
        csv=PATHS.aap_bench("{model}"),
        detail=PATHS.aap_bench("{model}").with_suffix(".json"),
    params:
        fp=fp("bench"),
        threads=lambda wildcards, threads: config["bench"]["threads"] or threads,
    threads: workflow.cores
    log:
        LOGS / "bench_aap_{model}.log",
    shell:
        dance("bench-aap", "--model {wildcards.model}", "--set bench.threads={params.threads}")


rule dance_summary:
    input:
        evaluations=[PATHS.aap_eval(m, v, k) for m in config["models"] for v, k in aap_points()],
        benches=expand(PATHS.aap_bench("{model}"), model=config["models"]),
    output:
        csv=PATHS.dance_summary,
        md=PATHS.dance_summary.with_suffix(".md"),
    log:
        LOGS / "dance_summary.log",
    shell:
        dance("dance-summary")
