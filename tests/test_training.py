"""Baseline training: determinism, exact resume after SIGKILL, checkpoint safety."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from dance import checkpoint
from dance import config as config_mod
from dance.data import prepare
from dance.errors import CheckpointError
from dance.io import sha256_file
from dance.models.trained import load_trained, model_meta
from dance.paths import Paths
from dance.train.baseline import train_baseline
from dance.train.loop import resume_dir

from conftest import REPO, dance_cli, run, tiny_config


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


@pytest.mark.slow
def test_a_changed_config_trains_afresh_and_changing_it_back_resumes(tmp_path, capfd):
    """After a config change the workflow re-runs training while the old config's resume
    point is still there: the new run must neither resume from it nor be blocked by it, and
    the old config's point must survive, so that going back does not train again."""
    cfg = tiny_config(tmp_path)
    first = _train(cfg).read_bytes()
    state_dir = Paths(cfg).epoch_checkpoint_dir("c3d", "baseline")
    changed = tiny_config(tmp_path, train={"lr": 0.01})
    capfd.readouterr()
    assert train_baseline(changed, "c3d").read_bytes() != first
    assert "resuming" not in capfd.readouterr().err
    assert len(list(state_dir.glob("run-*/epoch_*.pt"))) == 2
    assert train_baseline(cfg, "c3d").read_bytes() == first
    assert "resuming after epoch" in capfd.readouterr().err


@pytest.mark.slow
def test_a_resume_point_of_another_run_is_refused(tmp_path):
    cfg = tiny_config(tmp_path)
    _train(cfg)
    state_dir = Paths(cfg).epoch_checkpoint_dir("c3d", "baseline")
    [point] = state_dir.glob("run-*/epoch_*.pt")
    changed = tiny_config(tmp_path, train={"lr": 0.01})
    meta = model_meta(changed, "c3d", "baseline", 10)
    planted = resume_dir(state_dir, meta) / point.name   # copied by hand into the wrong run
    planted.parent.mkdir(parents=True)
    shutil.copy(point, planted)
    with pytest.raises(CheckpointError, match="fingerprint"):
        train_baseline(changed, "c3d")


# Every training rule: what the workflow is asked for, where the step keeps its per-epoch
# resume state, and the `python -m dance` command that is killed.
KILL_CASES = {
    "baseline": (lambda p: [p.checkpoint("c3d", "baseline"), p.history("c3d", "baseline")],
                 lambda p: p.epoch_checkpoint_dir("c3d", "baseline"), "train-baseline"),
    "ava": (lambda p: [p.checkpoint("c3d", "ava"), p.history("c3d", "ava")],
            lambda p: p.epoch_checkpoint_dir("c3d", "ava"), "train-ava"),
    "aap": (lambda p: [p.aap_checkpoint("c3d", "dance", 0), p.aap_history("c3d", "dance", 0)],
            lambda p: p.aap_state_dir("c3d", "dance", 0), "train-aap"),
}
KILL_OVERRIDES = {"models": ["c3d"], "train": {"epochs": 1}, "ava": {"epochs": 1},
                  "aap": {"epochs": 1, "points": [0.5], "ablations": [], "train_clips": 48,
                          "val_clips": 16},
                  "dataset": {"synthetic": {"train_clips": 64}}}
KILLED_EPOCHS = 3  # the killed stage's epochs (the stages before it train one)


def _kill_config(root, stage):
    section = "train" if stage == "baseline" else stage
    return tiny_config(root, **config_mod.merge(KILL_OVERRIDES,
                                                {section: {"epochs": KILLED_EPOCHS}}))


def _workflow_cmd(root, stage):
    """Snakemake asked for `stage`'s outputs under a tiny config written to root/config.yaml."""
    cfg = _kill_config(root, stage)
    targets = KILL_CASES[stage][0]
    cfg_file = root / "config.yaml"
    cfg_file.parent.mkdir(parents=True, exist_ok=True)
    cfg_file.write_text(yaml.safe_dump(cfg))
    # The targets come first: --configfile takes several values in Snakemake 9.
    return cfg, [sys.executable, "-m", "snakemake", *(str(t) for t in targets(Paths(cfg))),
                 "--cores", "1", "--configfile", str(cfg_file)]


def _kill_step(snakemake: subprocess.Popen, command: str, root) -> None:
    """SIGKILL the `python -m dance <command>` step that this Snakemake run started (the
    Python process itself, not the shell around it, whose one argument holds the same words)."""
    for child in psutil.Process(snakemake.pid).children(recursive=True):
        try:
            args = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        if ["-m", "dance", command] == args[1:4] and str(root) in " ".join(args):
            child.send_signal(signal.SIGKILL)
            return
    raise AssertionError(f"no running '{command}' step to kill")


@pytest.mark.slow
@pytest.mark.parametrize("stage", sorted(KILL_CASES))
def test_sigkill_during_training_then_rerun_matches_uninterrupted(tmp_path, stage):
    """SIGKILL a training step of the workflow at a random point after its first epoch; a
    plain re-run resumes and ends with the same bytes as an uninterrupted run, and the
    killed step leaves no output behind that Snakemake would take as complete."""
    targets, state_dir_of, command = KILL_CASES[stage]
    _, ref_cmd = _workflow_cmd(tmp_path / "ref", stage)
    ref = run(ref_cmd)
    assert ref.returncode == 0, ref.stderr[-3000:]

    cfg, cmd = _workflow_cmd(tmp_path / "run", stage)
    outputs = targets(Paths(cfg))
    state_dir = state_dir_of(Paths(cfg))
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    deadline = time.time() + 600
    while not list(state_dir.glob("run-*/epoch_*.pt")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(state_dir.glob("run-*/epoch_*.pt")), f"{stage} never reached its first checkpoint"
    delay = random.uniform(0.0, 0.5)  # anywhere in the next epoch, saving included
    time.sleep(delay)
    _kill_step(proc, command, tmp_path / "run")
    proc.wait(timeout=120)
    assert proc.returncode != 0, f"killed {delay:.2f} s after the first epoch"
    for out in outputs:
        assert not out.exists(), f"{out} left behind by the killed step ({delay:.2f} s)"

    rerun = run(cmd)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming after epoch" in rerun.stdout + rerun.stderr  # the rule tees to stdout
    for out, want in zip(outputs, targets(Paths(_kill_config(tmp_path / "ref", stage))),
                         strict=True):
        assert sha256_file(out) == sha256_file(want), f"{out} differs ({delay:.2f} s)"


def test_training_whose_loss_is_not_finite_stops_naming_step_epoch_and_key(tmp_path):
    # Before, train.lr=1e30 (or .inf, now refused by the config) trained to NaN, exit 0,
    # and wrote a NaN checkpoint.
    cfg = tiny_config(tmp_path, models=["c3d"], train={"epochs": 1, "lr": 1e30})
    prepare(cfg, progress=False)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    proc = dance_cli("train-baseline", "--config", str(cfg_file), "--model", "c3d")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "c3d baseline" in last and "epoch 1" in last and "'train.lr'" in last, last
    assert not Paths(cfg).checkpoint("c3d", "baseline").exists()
