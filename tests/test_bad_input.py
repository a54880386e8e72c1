"""Bad input through the command line: each case stops with exit status 2 and one message
naming the file or key, prints no traceback, and leaves no output behind.

(Invalid and unknown config keys: tests/test_config.py; corrupt videos inside the loader:
tests/test_video_datasets.py. Here every case goes through `python -m dance`.)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from dance.data import prepare
from dance.paths import Paths
from dance.train.baseline import train_baseline

from conftest import copy_trained, dance_cli, run, tiny_config
from videos import make_ucf101


@pytest.fixture
def trained(tiny_baselines) -> dict:
    """The session's tiny data set and baselines; each test copies them."""
    return tiny_baselines


def _copy(cfg: dict, root: Path, **overrides) -> tuple[dict, Path]:
    """The trained work folder under `root`, and a config file pointing at it."""
    new = copy_trained(cfg, root, **{"models": ["c3d"], **overrides})
    cfg_file = root / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(new))
    return new, cfg_file


def _fails_naming(proc, *names: object) -> None:
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    assert "Traceback" not in err + proc.stdout, err[-2000:]
    for name in names:
        assert str(name) in err, (name, err[-2000:])


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_damaged_data_shard_is_named_and_nothing_is_trained(trained, tmp_path, damage):
    cfg, cfg_file = _copy(trained, tmp_path)
    paths = Paths(cfg)
    shutil.rmtree(paths.work / "checkpoints")
    shard = sorted(paths.data_dir.glob("train*.npy"))[0]
    if damage == "corrupt":
        data = bytearray(shard.read_bytes())
        data[-1] ^= 0xFF  # one flipped byte: same size, other checksum
        shard.write_bytes(bytes(data))
    else:
        shard.unlink()
    proc = dance_cli("train-baseline", "--config", str(cfg_file), "--model", "c3d")
    _fails_naming(proc, shard, "checksum mismatch" if damage == "corrupt" else "missing")
    assert not (paths.work / "checkpoints").exists()
    assert not paths.history("c3d", "baseline").exists()


def test_truncated_checkpoint_is_named_and_nothing_is_evaluated(trained, tmp_path):
    cfg, cfg_file = _copy(trained, tmp_path)
    paths = Paths(cfg)
    ckpt = paths.checkpoint("c3d", "baseline")
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    proc = dance_cli("evaluate", "--config", str(cfg_file), "--model", "c3d")
    _fails_naming(proc, ckpt, "corrupt or truncated")
    assert not paths.evaluation("c3d", "baseline").exists()


@pytest.mark.parametrize("mismatch", ["config", "model"])
def test_checkpoint_of_another_config_or_model_is_refused(trained, tmp_path, mismatch):
    cfg, cfg_file = _copy(trained, tmp_path)
    paths = Paths(cfg)
    args = ["--model", "c3d", "--set", "model.width=0.25"]
    ckpt, expect = paths.checkpoint("c3d", "baseline"), "width"
    if mismatch == "model":  # a C3D checkpoint where the R3D-18 one should be
        ckpt = paths.checkpoint("r3d18", "baseline")
        shutil.copy(paths.checkpoint("c3d", "baseline"), ckpt)   # over the real one
        args, expect = ["--model", "r3d18"], "model='c3d'"
    proc = dance_cli("evaluate", "--config", str(cfg_file), *args)
    _fails_naming(proc, ckpt, expect)
    assert not paths.metrics.exists()


def test_unreadable_video_is_named_and_no_shards_are_written(tmp_path):
    lay = make_ucf101(tmp_path / "ucf", corrupt=True, groups=3, clips_per_group=1)
    cfg = tiny_config(tmp_path, dataset={"name": "ucf101", "root": str(tmp_path / "ucf"),
                                         "frames": 4, "size": 16})
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    proc = dance_cli("prepare-data", "--config", str(cfg_file))
    _fails_naming(proc, lay["corrupt"])
    data = Paths(cfg).data_dir
    assert not data.exists() or not any(data.rglob("*.npy")), sorted(data.rglob("*"))


@pytest.mark.parametrize("key", ["results_dir", "work_dir"])
def test_output_folder_that_is_a_file_stops_before_any_work(tmp_path, key):
    # Permission bits do not stop root (CI runs as root); a file in the way stops anyone.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    cfg = tiny_config(tmp_path, **{key: str(blocker / "sub")})
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    proc = dance_cli("prepare-data", "--config", str(cfg_file))
    _fails_naming(proc, f"'{key}'", blocker)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "config.yaml"]
    # The workflow refuses it the same way, before any job.
    flow = run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
                str(cfg_file)])
    assert flow.returncode != 0 and f"'{key}'" in flow.stderr + flow.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "config.yaml"]


# --- checkpoints: data they were trained on, and what loading may run (issue 19) ------------

def _other_data(cfg: dict) -> None:
    """Rebuild the data set in cfg's work folder with other settings (as `prepare-data` with
    another config file did), leaving the config and the checkpoints as they were."""
    other = dict(cfg, dataset={**cfg["dataset"], "synthetic": {
        **cfg["dataset"]["synthetic"], "train_clips": cfg["dataset"]["synthetic"]["train_clips"] + 2}})
    prepare(other, progress=False)


def test_checkpoint_trained_on_other_data_is_refused_not_evaluated(trained, tmp_path):
    # Before, `evaluate` scored a checkpoint trained on the old data on the new test split,
    # exit 0 and no warning.
    cfg, cfg_file = _copy(trained, tmp_path)
    _other_data(cfg)
    proc = dance_cli("evaluate", "--config", str(cfg_file), "--model", "c3d")
    _fails_naming(proc, Paths(cfg).checkpoint("c3d", "baseline"), "another data set")
    assert not Paths(cfg).metrics.exists()


def test_training_on_changed_data_starts_afresh_instead_of_resuming(trained, tmp_path):
    cfg, _ = _copy(trained, tmp_path)
    paths = Paths(cfg)
    before = sorted(paths.epoch_checkpoint_dir("c3d", "baseline").glob("run-*"))
    _other_data(cfg)
    train_baseline(cfg, "c3d")
    after = sorted(paths.epoch_checkpoint_dir("c3d", "baseline").glob("run-*"))
    assert len(before) == 1 and len(after) == 2 and before[0] in after
    from dance import checkpoint
    from dance.data import data_fingerprint
    assert checkpoint.load(paths.checkpoint("c3d", "baseline"))["meta"]["data"] == \
        data_fingerprint(cfg)


class _Payload:
    """Pickles to a call of open(marker, "w"): loading it with pickle creates the file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_checkpoint_that_would_run_code_is_refused_and_nothing_runs(trained, tmp_path):
    # Before, torch.load(weights_only=False) ran the payload when `evaluate` read the file.
    import torch

    cfg, cfg_file = _copy(trained, tmp_path)
    ckpt = Paths(cfg).checkpoint("c3d", "baseline")
    marker = tmp_path / "ran"
    payload = torch.load(ckpt, weights_only=True)
    torch.save({**payload, "extra": _Payload(marker)}, ckpt)
    proc = dance_cli("evaluate", "--config", str(cfg_file), "--model", "c3d")
    _fails_naming(proc, ckpt, "refused unread")
    assert not marker.exists()
    assert not Paths(cfg).metrics.exists()


def test_unknown_model_is_named_with_the_allowed_ones(trained, tmp_path):
    # Before: "checkpoint not found".
    _, cfg_file = _copy(trained, tmp_path)
    proc = dance_cli("evaluate", "--config", str(cfg_file), "--model", "vgg")
    _fails_naming(proc, "unknown model 'vgg'", "c3d", "r3d18")
