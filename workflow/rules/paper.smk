# Paper outputs: tables T1–T4, figures F1–F10, the claims check and provenance.
# What each table/figure reads is declared once, in dance.report.registry (its `inputs`,
# and `optional` files of stages that may not be part of this workflow). Every figure rule
# also depends on its plotting module and the shared style (dance.report.style), and on the
# config section `plots` (params) — only figure rules do, so editing a plotting option or
# plotting code re-draws the figures and re-runs nothing upstream.
TABLE_CMD = dance("table", "{params.id}")
FIGURE_CMD = dance("figure", "{params.id}")


rule table_T1:
    input:
        unpack(artifact_inputs("T1")),
    output:
        report_outputs("T1", "Tables"),
    log:
        LOGS / "table_T1.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="T1",
        fp=fp("dataset"),
    shell:
        TABLE_CMD


rule table_T2:
    input:
        unpack(artifact_inputs("T2")),
    output:
        report_outputs("T2", "Tables"),
    log:
        LOGS / "table_T2.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="T2",
        fp=fp("claims"),
    shell:
        TABLE_CMD


rule table_T3:
    input:
        unpack(artifact_inputs("T3")),
    output:
        report_outputs("T3", "Tables"),
    log:
        LOGS / "table_T3.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="T3",
    shell:
        TABLE_CMD


rule table_T4:
    input:
        unpack(artifact_inputs("T4")),
    output:
        report_outputs("T4", "Tables"),
    log:
        LOGS / "table_T4.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="T4",
    shell:
        TABLE_CMD


rule figure_F1:
    input:
        unpack(artifact_inputs("F1")),
    output:
        report_outputs("F1", "Figures"),
    log:
        LOGS / "figure_F1.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F1",
        fp=fp("plots", "claims"),
    shell:
        FIGURE_CMD


rule figure_F2:
    input:
        unpack(artifact_inputs("F2")),
    output:
        report_outputs("F2", "Figures"),
    log:
        LOGS / "figure_F2.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F2",
        fp=fp("plots"),
    shell:
        FIGURE_CMD


rule figure_F3:
    input:
        unpack(artifact_inputs("F3")),
    output:
        report_outputs("F3", "Figures"),
    log:
        LOGS / "figure_F3.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F3",
        fp=fp("plots", "claims"),
    shell:
        FIGURE_CMD


rule figure_F4:
    input:
        unpack(artifact_inputs("F4")),
    output:
        report_outputs("F4", "Figures"),
    log:
        LOGS / "figure_F4.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F4",
        fp=fp("plots", "claims"),
    shell:
        FIGURE_CMD


rule figure_F5:
    input:
        unpack(artifact_inputs("F5")),
    output:
        report_outputs("F5", "Figures"),
    log:
        LOGS / "figure_F5.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F5",
        fp=fp("plots"),
    shell:
        FIGURE_CMD


rule figure_F6:
    input:
        unpack(artifact_inputs("F6")),
    output:
        report_outputs("F6", "Figures"),
    log:
        LOGS / "figure_F6.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F6",
        fp=fp("plots", "claims"),
    shell:
        FIGURE_CMD


rule figure_F7:
    input:
        unpack(artifact_inputs("F7")),
    output:
        report_outputs("F7", "Figures"),
    log:
        LOGS / "figure_F7.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F7",
        fp=fp("plots", "claims"),
    shell:
        FIGURE_CMD


rule figure_F8:
    input:
        unpack(artifact_inputs("F8")),
    output:
        report_outputs("F8", "Figures"),
    log:
        LOGS / "figure_F8.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F8",
        fp=fp("plots", "claims"),
    shell:
        FIGURE_CMD


rule figure_F9:
    input:
        unpack(artifact_inputs("F9")),
    output:
        report_outputs("F9", "Figures"),
    log:
        LOGS / "figure_F9.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F9",
        fp=fp("plots"),
    shell:
        FIGURE_CMD


rule figure_F10:
    input:
        unpack(artifact_inputs("F10")),
    output:
        report_outputs("F10", "Figures"),
    log:
        LOGS / "figure_F10.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        id="F10",
        fp=fp("plots", "energy"),
    shell:
        FIGURE_CMD


rule claims:
    input:
        results=lambda w: [str(p) for p in REPORT.claims_inputs(config)]
        + [str(p) for p in REPORT.claims_optional(config) if produced_by_workflow(p)],
        code=["src/dance/report/claims.py", "src/dance/report/data.py"],
    output:
        report(str(PATHS.claims), caption="../report/claims.rst", category="Claims"),
    log:
        LOGS / "claims.log",
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        fp=fp("claims"),
    shell:
        dance("claims")


# Written after the results it describes (the claims and the tables, not the figures: a
# re-drawn figure changes no number). The commit is a params trigger, so a new commit
# re-records it; the date alone never re-runs anything.
rule provenance:
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
    conda:
        CONDA_ENV
    threads: job_threads("report")
    resources:
        **job_resources("report"),
    params:
        fp=dance_config.fingerprint(config),
        commit=git_commit(),
    shell:
        dance("provenance")
