"""End to end: the smoke config runs the whole DAG into a temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import assert_same_outputs, comparable_outputs, run, run_smoke, smoke_args


@pytest.mark.slow
def test_smoke_workflow_produces_every_output(smoke_run):
    snake = [sys.executable, "-m", "snakemake"]
    summary = run([*snake, "--summary", "--cores", "1", *smoke_args(smoke_run)])
    assert summary.returncode == 0, summary.stderr[-2000:]
    rows = [line.split("\t") for line in summary.stdout.splitlines()[1:] if "\t" in line]
    outputs = [r[0] for r in rows]
    assert len(outputs) > 10
    for path in outputs:
        assert (smoke_run / path).exists() or Path(path).exists(), path
    for kind in ("results", "figures"):
        assert any(p.startswith(f"{smoke_run}/{kind}") for p in outputs), kind

    again = run([*snake, "-n", "--cores", "1", *smoke_args(smoke_run)])
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_two_runs_from_scratch_give_identical_metrics_and_tables(smoke_run, tmp_path):
    """Same config, same machine: byte-identical metrics, tables and claims (measured
    latencies excepted: conftest.MEASURED_FILES / MEASURED_COLUMNS)."""
    proc = run_smoke(tmp_path, "--cores", "2")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert len(comparable_outputs(tmp_path)) > 20
    assert_same_outputs(smoke_run, tmp_path)


def test_snakemake_lint_reports_nothing(tmp_path):
    proc = run([sys.executable, "-m", "snakemake", "--lint", *smoke_args(tmp_path)])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr
