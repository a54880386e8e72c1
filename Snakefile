"""DANCE artifact: every table and figure of the paper from one DAG.

    snakemake --cores all                                   # default config
    snakemake --cores all --configfile workflow/config/smoke.yaml

Thin by design: the config is validated, the rule files are included, and each rule calls
one `python -m dance <command>`. All logic lives in src/dance.
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "workflow/config/default.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/jobs.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/baseline.smk"
include: "workflow/rules/ava.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/aap.smk"
include: "workflow/rules/sota.smk"
include: "workflow/rules/sota_dynamic.smk"
include: "workflow/rules/devices.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        rules.plot_samples.output,
        expand(
            rules.evaluate.output.metrics,
            model=config["models"],
            stage=dance_plan.EVALUATED_STAGES,
        ),
        expand(rules.ava_stats.output, model=config["models"]),
        rules.profile.output,
        expand(
            rules.bench.output.csv,
            model=config["models"],
            stage=dance_plan.BENCHED_STAGES,
        ),
        rules.dance_summary.output,
        expand(rules.latency_table.output, model=config["models"]),
        rules.comparison.output,
        rules.devices_summary.output,
        [a.outputs(config) for a in REPORT.ARTIFACTS.values()],
        rules.claims.output,
        rules.provenance.output,
