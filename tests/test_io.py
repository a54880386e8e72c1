"""Atomic outputs: nothing half-written, readable permissions, clear errors."""

from __future__ import annotations

import os
import stat

import pytest

from dance.errors import DanceError
from dance.io import atomic_path, atomic_paths, write_csv, write_json


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_set_of_files_is_replaced_only_when_all_are_written(tmp_path):
    targets = [tmp_path / "f.png", tmp_path / "f.csv"]
    for t in targets:
        t.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_paths(targets) as tmps:
            tmps[0].write_text("new")
            raise RuntimeError("interrupted before the second file")
    assert [t.read_text() for t in targets] == ["old", "old"]
    assert sorted(tmp_path.iterdir()) == sorted(targets)
    with atomic_paths(targets) as tmps:
        for t in tmps:
            t.write_text("new")
    assert [t.read_text() for t in targets] == ["new", "new"]
    assert sorted(tmp_path.iterdir()) == sorted(targets)


def test_outputs_get_umask_permissions_not_0600(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    mode = stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_csv_floats_are_stable_and_none_is_empty(tmp_path):
    write_csv(tmp_path / "a.csv", [{"a": 0.1 + 0.2, "b": None}, {"a": 1, "c": "x"}])
    assert (tmp_path / "a.csv").read_text() == "a,b,c\n0.3,,\n1,,x\n"


def test_output_folder_that_cannot_be_created_is_named(tmp_path):
    # Permission bits do not stop root (CI runs as root), a file in the way does.
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    with pytest.raises(DanceError, match="cannot create output folder"):
        write_json(blocker / "metrics" / "x.json", {})


# --- the disk or the path refuses a write (issue 19.4) --------------------------------------

def _disk_full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_writing_a_checkpoint_names_it_and_leaves_nothing(tmp_path, monkeypatch):
    # Before: a bare OSError traceback.
    from pathlib import Path

    from dance import checkpoint

    target = tmp_path / "ckpt" / "baseline.pt"
    monkeypatch.setattr(Path, "write_bytes", _disk_full)
    with pytest.raises(DanceError, match="cannot write .*baseline.pt: No space left on device; "
                                         "nothing partial was left"):
        checkpoint.save(target, {"meta": {}, "model": {}})
    assert list(target.parent.iterdir()) == []


def test_disk_full_while_writing_a_data_shard_names_it_and_leaves_nothing(tmp_path, monkeypatch):
    import numpy as np

    from dance.data import shards

    monkeypatch.setattr(np, "save", _disk_full)
    writer = shards.ShardWriter(tmp_path, "train", shard_size=2, frames=2, size=4)
    with pytest.raises(DanceError, match=r"cannot write .*train_000.npy: No space left"):
        for _ in range(2):
            writer.add(np.zeros((2, 4, 4, 3), np.uint8), {"label": 0})
    assert [p for p in tmp_path.iterdir() if p.suffix in (".npy", ".tmp")] == []


def test_path_longer_than_the_os_allows_is_named(tmp_path):
    from conftest import dance_cli

    long_dir = tmp_path / ("x" * 300)
    proc = dance_cli("prepare-data", "--set", f"work_dir={long_dir}",
                     "--set", "dataset.synthetic.train_clips=4")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "File name too long" in proc.stderr and "x" * 300 in proc.stderr
