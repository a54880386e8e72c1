# Paper outputs: tables T1–T4, figures F1–F10, the claims check and provenance.
# What each table/figure reads is declared once, in dance.report.registry (its `inputs`,
# and `optional` files of stages that may not be part of this workflow). Every figure rule
# also depends on its plotting module and the shared style (dance.report.style), and on the
# config section `plots` (params) — only figure rules do, so editing a plotting option or
# plotting code re-draws the figures and re-runs nothing upstream.
# The command comes through params (`step`, e.g. "table T1"): a `shell:` body is evaluated
# when the job runs, after the loop below has moved on, so it must not read the loop's
# variables. (A param holding only "table" would be a prefix of "tables/…", which
# `snakemake --lint` reports as a hard-coded path.)
ARTIFACT_CMD = dance("{params.step}")


# One rule per table and figure of the registry: `table_<id>` / `figure_<id>`, re-run when
# its inputs, its code or the config sections it reads (`Artifact.settings`, and `plots` for
# every figure) change.
for _artifact in REPORT.ARTIFACTS.values():
    _figure = _artifact.kind == "figure"
    _kind = "figure" if _figure else "table"

    rule:
        name:
            f"{_kind}_{_artifact.id}"
        input:
            unpack(artifact_inputs(_artifact.id)),
        output:
            report_outputs(_artifact.id, "Figures" if _figure else "Tables"),
        log:
            LOGS / f"{_kind}_{_artifact.id}.log",
        conda:
            CONDA_ENV
        threads: job_threads("report")
        resources:
            **job_resources("report"),
        params:
            **artifact_trigger(_artifact),
            step=f"{_kind} {_artifact.id}",
        shell:
            ARTIFACT_CMD


use rule _report_job as claims with:
    input:
        results=lambda w: [str(p) for p in REPORT.claims_inputs(config)]
        + [str(p) for p in REPORT.claims_optional(config) if produced_by_workflow(p)],
        code=["src/dance/report/claims.py", "src/dance/report/data.py"],
    output:
        report(str(PATHS.claims), caption="../report/claims.rst", category="Claims"),
    log:
        LOGS / "claims.log",
    params:
        fp=fp("claims"),
        step=cli("claims"),


# Written after the results it describes (the claims and the tables, not the figures: a
# re-drawn figure changes no number). The commit is a params trigger, so a new commit
# re-records it; the date alone never re-runs anything.
use rule _report_job as provenance with:
    input:
        results=[
            rules.claims.output,
            [o for t in REPORT.TABLES for o in t.outputs(config)],
        ],
        code="src/dance/report/provenance.py",
    output:
        report(
            str(PATHS.provenance),
            caption="../report/provenance.rst",
            category="Claims",
        ),
    log:
        LOGS / "provenance.log",
    params:
        fp=dance_config.fingerprint(config),
        commit=git_commit(),
        step=cli("provenance"),
