"""The smoke workflow through Snakemake's Slurm executor on a real single-node cluster.

tests/slurm/setup_localhost.sh installs Slurm and munge from Debian's packages, configures
this host as the one node (its real CPU count and memory) and starts munged, slurmctld and
slurmd. There is no accounting database: job states come from `squeue`
(`--slurm-status-command squeue`, with MinJobAge = 600 s in slurm.conf).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import REPO, assert_same_outputs, run_smoke

SETUP = REPO / "tests" / "slurm" / "setup_localhost.sh"


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root: the test installs Slurm with apt-get and starts its daemons"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "Slurm is not installed and there is no apt-get to install it from Debian"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")
def test_smoke_workflow_through_slurm_matches_a_local_run(smoke_run, tmp_path):
    setup = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, f"Slurm set-up failed: {setup.stdout}{setup.stderr}"

    proc = run_smoke(tmp_path, "--profile", "workflow/profiles/slurm",
                     # No account: the plugin tries sacctmgr/sshare, finds none, submits
                     # without one (its --slurm-no-account flag is a no-op in 2.8).
                     "--slurm-status-command", "squeue",
                     "--slurm-init-seconds-before-status-checks", "5",
                     "--slurm-logdir", str(tmp_path / "slurm_logs"))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    submitted = log.count("has been submitted with SLURM jobid")
    assert submitted >= 40, f"only {submitted} jobs went through Slurm"  # 42 + the local `all`
    assert_same_outputs(smoke_run, tmp_path)
