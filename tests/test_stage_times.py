"""scripts/stage_times.py: per-stage wall times from a Snakemake log (the README's table)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

LOG = """Building DAG of jobs...
[Thu Dec  3 13:00:00 2026]
localrule prepare_data:
    output: work/data/synthetic/manifest.json
    jobid: 2
[Thu Dec  3 13:01:00 2026]
Finished jobid: 2 (Rule: prepare_data)
1 of 3 steps (33%) done
[Thu Dec  3 13:01:00 2026]
localrule train_baseline:
    jobid: 4
    wildcards: model=c3d
[Thu Dec  3 13:01:30 2026]
rule train_baseline:
    jobid: 5
    wildcards: model=r3d18
[Thu Dec  3 13:09:00 2026]
Finished jobid: 4 (Rule: train_baseline)
[Thu Dec  3 13:11:30 2026]
Finished jobid: 5 (Rule: train_baseline)
3 of 3 steps (100%) done
"""


def test_stage_times_sum_jobs_per_rule_file_and_span_the_run(tmp_path):
    log = tmp_path / "run.snakemake.log"
    log.write_text(LOG)
    out = tmp_path / "run_times.csv"
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "stage_times.py"), str(log),
                          "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows[0] == ["stage", "jobs", "job_minutes_sum", "longest_job_minutes",
                       "longest_job_rule", "span_minutes"]
    assert rows[1] == ["data", "1", "1.0", "1.0", "prepare_data", "1.0"]
    # two overlapping jobs: 8 + 10 minutes of job time over a 10.5-minute span
    assert rows[2] == ["baseline", "2", "18.0", "10.0", "train_baseline", "10.5"]
    assert rows[3] == ["total", "3", "19.0", "", "", "11.5"]
    assert "| baseline | 2 | 10.5 min | 18.0 min | 10.0 min (`train_baseline`) |" in res.stdout
    empty = tmp_path / "empty.log"
    empty.write_text("Building DAG of jobs...\n")
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "stage_times.py"), str(empty)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "no finished job" in res.stderr


RESUMED = """Building DAG of jobs...
[Thu Dec  3 20:00:00 2026]
rule train_baseline:
    jobid: 7
    wildcards: model=c3d
[Thu Dec  3 20:04:00 2026]
Finished jobid: 7 (Rule: train_baseline)
1 of 1 steps (100%) done
"""


def test_a_resumed_run_counts_each_part_but_not_the_pause_between(tmp_path):
    first, second = tmp_path / "a.snakemake.log", tmp_path / "b.snakemake.log"
    first.write_text(LOG)
    second.write_text(RESUMED)        # 8.5 hours later
    out = tmp_path / "run_times.csv"
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "stage_times.py"), str(first),
                          str(second), "--out", str(out)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    rows = {r.split(",")[0]: r.split(",") for r in out.read_text().splitlines()[1:]}
    # baseline: 10.5 min in the first part + 4 min in the second
    assert rows["baseline"] == ["baseline", "3", "22.0", "10.0", "train_baseline", "14.5"]
    assert rows["total"] == ["total", "4", "23.0", "", "", "15.5"]
