"""Baseline training: determinism, exact resume after SIGKILL, checkpoint safety."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from dance.data import prepare
from dance.errors import CheckpointError
from dance.io import sha256_file
from dance.paths import Paths
from dance.train import checkpoint
from dance.train.baseline import train_baseline
from dance.train.stage import load_trained

from conftest import REPO, run, tiny_config


def _train(cfg: dict, model: str = "c3d"):
    prepare(cfg, progress=False)
    return train_baseline(cfg, model)


def test_same_config_gives_same_checkpoint_bytes(tmp_path):
    a = tiny_config(tmp_path / "a")
    b = tiny_config(tmp_path / "b")
    ckpt_a, ckpt_b = _train(a), _train(b)
    assert sha256_file(ckpt_a) == sha256_file(ckpt_b)
    assert (Paths(a).history("c3d", "baseline").read_bytes()
            == Paths(b).history("c3d", "baseline").read_bytes())


def test_different_seed_gives_different_weights(tmp_path):
    a = tiny_config(tmp_path / "a")
    b = tiny_config(tmp_path / "b", seed=1)
    assert sha256_file(_train(a)) != sha256_file(_train(b))


def test_checkpoint_from_another_config_is_refused(tmp_path):
    cfg = tiny_config(tmp_path)
    _train(cfg, "r3d18")
    other = tiny_config(tmp_path, model={"width": 0.25})
    with pytest.raises(CheckpointError) as err:
        load_trained(other, "r3d18", "baseline", num_classes=10)
    assert str(Paths(cfg).checkpoint("r3d18", "baseline")) in str(err.value)


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "x.pt"
    checkpoint.save(path, {"meta": {}, "model": {}})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(path)
    assert str(path) in str(err.value) and "corrupt" in str(err.value)


def test_resume_checkpoint_with_other_config_is_refused(tmp_path):
    cfg = tiny_config(tmp_path)
    _train(cfg)
    state_dir = Paths(cfg).epoch_checkpoint_dir("c3d", "baseline")
    assert list(state_dir.glob("epoch_*.pt"))
    changed = tiny_config(tmp_path, train={"lr": 0.01})
    with pytest.raises(CheckpointError, match="fingerprint"):
        train_baseline(changed, "c3d")


@pytest.mark.slow
def test_sigkill_during_training_then_rerun_matches_uninterrupted(tmp_path):
    """Kill the training step of the workflow mid-run; a plain re-run resumes and ends
    with the same checkpoint bytes and metrics as an uninterrupted run."""
    overrides = {"models": ["c3d"], "train": {"epochs": 3},
                 "dataset": {"synthetic": {"train_clips": 64}}}
    ref_cfg = tiny_config(tmp_path / "ref", **overrides)
    ref_ckpt = _train(ref_cfg)

    cfg = tiny_config(tmp_path / "run", **overrides)
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    # The target comes first: --configfile takes several values in Snakemake 9.
    cmd = [sys.executable, "-m", "snakemake", Paths(cfg).evaluation("c3d", "baseline").as_posix(),
           "--cores", "1", "--configfile", str(cfg_file)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    state_dir = Paths(cfg).epoch_checkpoint_dir("c3d", "baseline")
    deadline = time.time() + 300
    while not list(state_dir.glob("epoch_000.pt")) and time.time() < deadline:
        time.sleep(0.2)
    assert list(state_dir.glob("epoch_000.pt")), "training never reached its first checkpoint"
    killed = subprocess.run(["pkill", "-KILL", "-f", f"dance train-baseline --config {tmp_path}"])
    assert killed.returncode == 0
    proc.wait(timeout=120)
    assert proc.returncode != 0
    final = Paths(cfg).checkpoint("c3d", "baseline")
    assert not final.exists()  # no half-written output taken as complete

    rerun = run(cmd)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming after epoch" in rerun.stdout + rerun.stderr  # the rule tees to stdout
    assert sha256_file(final) == sha256_file(ref_ckpt)
    assert (Paths(cfg).history("c3d", "baseline").read_bytes()
            == Paths(ref_cfg).history("c3d", "baseline").read_bytes())
