"""Atomic outputs: nothing half-written, readable permissions, clear errors."""

from __future__ import annotations

import os
import stat

import pytest

from dance.errors import DanceError
from dance.io import atomic_path, write_csv, write_json


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


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
