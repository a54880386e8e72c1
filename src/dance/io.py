"""Atomic file output and checksums.

Every file the artifact produces is written to a temporary sibling and renamed into place,
so an interrupted step never leaves a half-written file that Snakemake (or a resume) would
take as complete.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from dance.errors import DanceError

_UMASK = os.umask(0)
os.umask(_UMASK)
# Errors of the disk or the path, not of the code: named with the file, never a traceback.
_CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.ENAMETOOLONG, errno.EROFS}


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only on success."""
    with atomic_paths([path]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(paths: Iterable[str | Path]) -> Iterator[list[Path]]:
    """Yield one temporary path next to each of `paths`; only when the block succeeds,
    rename them all onto `paths`, back to back.

    For the several files of one output (a figure's PNG, PDF and CSV): a kill while they are
    being written (all but the last microseconds) leaves the earlier set whole instead of
    new files beside old ones. A kill between two of the renames can still mix them; Snakemake
    deletes a job's outputs before it starts and marks them incomplete until it ends, so it
    re-makes them."""
    targets = [Path(p) for p in paths]
    tmps: list[Path] = []
    try:
        for path in targets:
            tmps.append(_temp_sibling(path))
        yield tmps
        for tmp, path in zip(tmps, targets, strict=True):
            os.replace(tmp, path)
    except OSError as exc:
        if exc.errno not in _CANNOT_WRITE:
            raise
        # The output being written: the one whose temporary file failed, else the first.
        named = {str(tmp): path for tmp, path in zip(tmps, targets, strict=False)}
        where = named.get(str(exc.filename), targets[len(tmps)] if len(tmps) < len(targets)
                          else targets[0])
        raise DanceError(f"cannot write {where}: {exc.strerror}; nothing partial was left "
                         "(free space or shorten the path, then re-run)") from None
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def _temp_sibling(path: Path) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DanceError(f"cannot create output folder {path.parent}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise DanceError(f"output folder {path.parent} is not writable")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs should read like any file
    os.close(fd)
    return Path(tmp)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]],
              fieldnames: list[str] | None = None) -> None:
    """Write dict rows as CSV; column order is `fieldnames` or first-seen key order."""
    with atomic_path(path) as tmp:
        dump_csv(tmp, rows, fieldnames)


def dump_csv(path: str | Path, rows: Iterable[Mapping[str, Any]],
             fieldnames: list[str] | None = None) -> None:
    """:func:`write_csv` into `path` itself (a temporary path of :func:`atomic_paths`)."""
    rows = list(rows)
    if fieldnames is None:
        fieldnames = []
        for row in rows:
            fieldnames.extend(k for k in row if k not in fieldnames)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(row.get(k)) for k in fieldnames})


def _csv_cell(value: Any) -> Any:
    # repr-stable floats so that identical runs give byte-identical CSVs.
    if isinstance(value, float):
        return repr(round(value, 10))
    return "" if value is None else value


def markdown_table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A GitHub-flavoured Markdown table of already formatted cells (each writer keeps its own
    number format; the layout is this one, for every Markdown table the artifact writes)."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def read_json(path: str | Path) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DanceError(f"file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise DanceError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_output_folder(path: str | Path, key: str) -> None:
    """Fail before any work if the folder of config key `key` cannot receive outputs: a file
    stands where it or a parent should be, or the nearest existing folder is not writable.
    Creates nothing."""
    path = Path(path)
    existing = path
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as exc:                  # e.g. a name longer than the OS allows
        raise DanceError(f"config key '{key}' = {path}: {exc.strerror}") from None
    if not existing.is_dir():
        raise DanceError(f"config key '{key}' = {path}: {existing} is a file, not a folder; "
                         f"move it away or point '{key}' elsewhere")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DanceError(f"config key '{key}' = {path}: folder {existing} is not writable")
