"""The smoke workflow through Snakemake's Slurm executor on a real single-node cluster.

tests/slurm/setup_localhost.sh installs Slurm and munge from Debian's packages, configures
this host as the one node (its real CPU count and memory) and starts munged, slurmctld and
slurmd. There is no accounting database: job states come from `squeue`
(`--slurm-status-command squeue`, with MinJobAge = 600 s in slurm.conf). The run is the
session's second smoke run (conftest `second_smoke_run`), which the determinism test also
compares with the local one.
"""

from __future__ import annotations

import pytest

from conftest import assert_same_outputs, why_no_slurm


@pytest.mark.slow
@pytest.mark.skipif(why_no_slurm() is not None, reason=why_no_slurm() or "")
def test_smoke_workflow_through_slurm_matches_a_local_run(smoke_run, second_smoke_run):
    assert second_smoke_run.via_slurm, second_smoke_run.log[-4000:]
    submitted = second_smoke_run.log.count("has been submitted with SLURM jobid")
    assert submitted >= 40, f"only {submitted} jobs went through Slurm"  # 42 + the local `all`
    assert_same_outputs(smoke_run, second_smoke_run.root)
