"""End to end: the smoke config runs the whole DAG into a temporary folder."""

from __future__ import annotations

import sys

import pytest

from conftest import run


def _smoke_args(tmp_path):
    return ["--configfile", "workflow/config/smoke.yaml", "--config",
            f"results_dir={tmp_path}/results", f"figures_dir={tmp_path}/figures",
            f"work_dir={tmp_path}/work"]


@pytest.mark.slow
def test_smoke_workflow_produces_every_output(tmp_path):
    snake = [sys.executable, "-m", "snakemake"]
    proc = run([*snake, "--cores", "2", *_smoke_args(tmp_path)], timeout=1200)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    summary = run([*snake, "--summary", "--cores", "1", *_smoke_args(tmp_path)])
    assert summary.returncode == 0, summary.stderr[-2000:]
    rows = [line.split("\t") for line in summary.stdout.splitlines()[1:] if "\t" in line]
    outputs = [r[0] for r in rows]
    assert len(outputs) > 10
    for path in outputs:
        assert (tmp_path / path).exists() or __import__("pathlib").Path(path).exists(), path
    for kind in ("results", "figures"):
        assert any(p.startswith(f"{tmp_path}/{kind}") for p in outputs), kind

    again = run([*snake, "-n", "--cores", "1", *_smoke_args(tmp_path)])
    assert "Nothing to be done" in again.stdout + again.stderr
