"""UCF101 and HMDB51 from a local folder: official splits, PyAV decoding, shard cache.

Supported layouts (``dataset.root`` is the folder; the first matching variant is used):

UCF101
    videos       ``root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi``  (or ``root/UCF101/<Class>/``
                 or ``root/<Class>/``)
    split files  ``root/ucfTrainTestlist/`` (or
                 ``root/UCF101TrainTestSplits-RecognitionTask/ucfTrainTestlist/``) holding
                 ``classInd.txt`` ("1 ApplyEyeMakeup", 1-based), ``trainlist0{k}.txt``
                 ("ApplyEyeMakeup/v_..._g08_c01.avi 1") and ``testlist0{k}.txt`` (path only).
    Label = classInd index - 1. A listed file that differs from the disk only in letter case
    (the official lists say ``HandStandPushups`` in some names) is matched case-insensitively.

HMDB51
    videos       ``root/hmdb51_org/<class>/<video>.avi`` (or ``root/hmdb51/<class>/`` or
                 ``root/<class>/``)
    split files  ``root/testTrainMulti_7030_splits/<class>_test_split{k}.txt`` with lines
                 "<video>.avi <id>", id 1 = train, 2 = test, 0 = unused.
    Classes = every class that has a split file, sorted alphabetically; label = its index.

Sampling and resizing (fixed, so a cache is a function of the config alone):
    every frame is decoded; T indices ``round(linspace(0, n - 1, T))`` are taken (numpy
    rounding, half to even), so a video with fewer than T frames repeats frames by the same
    rule; each frame is centre-cropped to its shorter side and resized bilinearly (with
    antialiasing) to S×S — i.e. shorter side to S, then centre crop. Pillow does the resize
    (always present via matplotlib); a torch ``interpolate`` fallback is used without it.

Validation hold-out (our choice; the official splits have none): within each class, a
seeded shuffle of that class's units in the official train list moves
``max(1, round_half_up(val_fraction * n_units))`` units to ``val`` (none if val_fraction is 0
or the class has fewer than 2 units; always at least one unit stays in train). The unit is a
UCF101 *group* (``<Class>/gXX``: clips of one group share actor and scene, so a group split
across train and val would leak) and a single HMDB51 video. The draw depends only on the
seed and the sorted unit names, not on file order.

Errors the user can fix are :class:`DataError` naming the path: missing root, missing split
file, a listed video missing on disk (all checked before anything is decoded), and a video
that cannot be decoded (unless ``dataset.skip_unreadable``; then it is skipped and listed in
the manifest's ``skipped``). Output is built in a staging folder and moved into ``out_dir``
on success; ``manifest.json`` is written last, so its presence marks a complete cache. Why this module is long: both data sets'
layouts, their split files and the hold-out rule are one contract with one cache format;
the decoder itself is short.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dance.data.shards import SPLITS, ShardWriter, read_manifest, verify, write_manifest
from dance.errors import DanceError, DataError

try:  # Pillow comes with matplotlib; the torch path keeps the module usable without it.
    from PIL import Image

    RESIZE_BACKEND = "pil-bilinear"
except ImportError:  # pragma: no cover - depends on the environment
    Image = None
    RESIZE_BACKEND = "torch-bilinear-antialias"

# Bump when the decode/sample/resize rule changes, so an old cache is not reused.
VIDEO_FORMAT = 1

# Keys of the manifest that must match for an existing cache to be reused.
_REUSE_KEYS = ("name", "root", "split", "clip_shape", "seed", "val_fraction",
               "skip_unreadable", "shard_size", "resize", "decoder", "video_format")

_UCF_VIDEO_DIRS = ("UCF-101", "UCF101", ".")
_UCF_SPLIT_DIRS = ("ucfTrainTestlist", "UCF101TrainTestSplits-RecognitionTask/ucfTrainTestlist")
_HMDB_VIDEO_DIRS = ("hmdb51_org", "hmdb51", ".")
_HMDB_SPLIT_DIRS = ("testTrainMulti_7030_splits",)
_UCF_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)\.\w+$", re.IGNORECASE)
_HMDB_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<k>[123])\.txt$")


class UnreadableVideo(DataError):
    """A video that exists but cannot be decoded; `skip_unreadable` may skip exactly these."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cannot decode video {path}: {reason} (set dataset.skip_unreadable: "
                         f"true to skip such videos)")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class _Item:
    """One video to decode: where it is, what it is called in the split files, its label."""

    path: Path
    source: str  # "<class>/<file>" as in the split files
    label: int
    group: str  # hold-out unit


# --------------------------------------------------------------------------- decoding


def sample_indices(n_frames: int, frames: int) -> np.ndarray:
    """T frame indices spread uniformly over n frames (repeats when n < T)."""
    if n_frames < 1:
        raise ValueError("n_frames must be >= 1")
    return np.round(np.linspace(0, n_frames - 1, frames)).astype(np.int64)


def _resize_crop(frame: np.ndarray, size: int, backend: str = RESIZE_BACKEND) -> np.ndarray:
    """Centre square crop of the shorter side, resized to size×size (uint8 H×W×3)."""
    h, w = frame.shape[:2]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    # Crop before resizing: a resize `box` would let the filter reach the cropped-off pixels.
    crop = np.ascontiguousarray(frame[top:top + m, left:left + m])
    if backend.startswith("pil"):
        out = Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(out, dtype=np.uint8)
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float()
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                      antialias=True)
    return y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _reason(exc: BaseException) -> str:
    # A stable, path-free text so that manifests of identical runs are byte-identical.
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def decode_clip(path: str | Path, frames: int, size: int) -> np.ndarray:
    """Decode a video into a uint8 (T, S, S, 3) clip by the module's sampling/resize rule.

    Every frame is decoded (the videos are a few seconds long) because container frame
    counts and seeking are unreliable in AVI files; only the sampled frames are converted.
    Raises DataError if the file is missing, UnreadableVideo if it cannot be decoded.
    """
    import av
    from av.error import FFmpegError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"video not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnreadableVideo(path, "no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = list(container.decode(stream))
            if not decoded:
                raise UnreadableVideo(path, "no decodable video frames")
            idx = sample_indices(len(decoded), frames)
            small = {int(i): _resize_crop(decoded[i].to_ndarray(format="rgb24"), size)
                     for i in np.unique(idx)}
    except UnreadableVideo:
        raise
    except (FFmpegError, OSError, EOFError, ValueError, IndexError, MemoryError) as exc:
        raise UnreadableVideo(path, _reason(exc)) from None
    return np.stack([small[int(i)] for i in idx])


# --------------------------------------------------------------------------- layouts


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of non-empty lines; the official files use CRLF."""
    if not path.is_file():
        raise DataError(f"split file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"cannot read split file {path}: {exc.strerror}") from None
    return [(n, s.strip()) for n, s in enumerate(text.splitlines(), 1) if s.strip()]


def _first_dir(root: Path, candidates: Iterable[str]) -> Path | None:
    for rel in candidates:
        if (root / rel).is_dir():
            return root / rel
    return None


def _video_dir(root: Path, candidates: tuple[str, ...], classes: list[str],
               what: str) -> Path:
    """The first candidate folder that holds class folders (one layout variant per root)."""
    for rel in candidates:
        base = root if rel == "." else root / rel
        if base.is_dir() and any((base / c).is_dir() for c in classes):
            return base
    archives = [p for rel in candidates for p in [root / rel / f"{classes[0]}.rar"]
                if p.is_file()]
    hint = (f"; found {archives[0]} — extract the per-class .rar archives first"
            if archives else "")
    expected = " or ".join(f"{root / rel / '<class>'}/" for rel in candidates if rel != ".")
    raise DataError(f"no {what} video folders under {root}: expected {expected} or "
                    f"{root}/<class>/ (e.g. {classes[0]}/){hint}")


def _locate(base: Path, cls: str, name: str, cache: dict[str, dict[str, str]]) -> Path:
    """The file on disk, matching the name case-insensitively if the exact name is absent."""
    exact = base / cls / name
    if exact.is_file():
        return exact
    folder = base / cls
    if cls not in cache:
        cache[cls] = ({p.name.lower(): p.name for p in folder.iterdir() if p.is_file()}
                      if folder.is_dir() else {})
    found = cache[cls].get(name.lower())
    return folder / found if found else exact


def _ucf101(root: Path, split: int) -> tuple[list[str], list[_Item], list[_Item], dict]:
    split_dir = _first_dir(root, _UCF_SPLIT_DIRS) or root / _UCF_SPLIT_DIRS[0]
    class_file = split_dir / "classInd.txt"
    classes: list[str] = []
    for n, line in _read_lines(class_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(classes) + 1:
            raise DataError(f"{class_file}:{n}: expected '<index> <ClassName>' with index "
                            f"{len(classes) + 1}, got {line!r}")
        classes.append(parts[1])
    if not classes:
        raise DataError(f"split file {class_file} lists no classes")
    index = {c: i for i, c in enumerate(classes)}
    video_dir = _video_dir(root, _UCF_VIDEO_DIRS, classes, "UCF101")
    cache: dict[str, dict[str, str]] = {}

    def parse(path: Path, labelled: bool) -> list[_Item]:
        items = []
        for n, line in _read_lines(path):
            parts = line.rsplit(maxsplit=1)
            if len(parts) == 2 and parts[1].isdigit():
                rel, given = parts[0], int(parts[1])
            elif labelled:
                raise DataError(f"{path}:{n}: expected '<Class>/<video>.avi <label>', got "
                                f"{line!r}")
            else:
                rel, given = line, None
            rel = rel.replace("\\", "/")
            cls, _, name = rel.partition("/")
            if cls not in index or not name:
                raise DataError(f"{path}:{n}: {rel!r} is not '<Class>/<video>' with a class "
                                f"of {class_file}")
            if given is not None and given != index[cls] + 1:
                raise DataError(f"{path}:{n}: label {given} of {rel!r} disagrees with "
                                f"{class_file} ({cls} = {index[cls] + 1})")
            m = _UCF_NAME.match(name)
            group = f"{cls}/g{int(m['group']):02d}" if m else rel
            items.append(_Item(_locate(video_dir, cls, name, cache), rel, index[cls], group))
        if not items:
            raise DataError(f"split file {path} lists no videos")
        return items

    train = parse(split_dir / f"trainlist0{split}.txt", labelled=True)
    test = parse(split_dir / f"testlist0{split}.txt", labelled=False)
    layout = {"videos": _rel(video_dir, root), "split_files": _rel(split_dir, root)}
    return classes, train, test, layout


def _hmdb51(root: Path, split: int) -> tuple[list[str], list[_Item], list[_Item], dict]:
    split_dir = _first_dir(root, _HMDB_SPLIT_DIRS) or root / _HMDB_SPLIT_DIRS[0]
    expected = split_dir / f"<class>_test_split{split}.txt"
    if not split_dir.is_dir():
        raise DataError(f"split folder not found: {split_dir} (expected files {expected})")
    found = {m["cls"] for p in split_dir.iterdir() if (m := _HMDB_SPLIT_FILE.match(p.name))}
    classes = sorted(found)
    if not classes:
        raise DataError(f"no split files {expected} in {split_dir}")
    video_dir = _video_dir(root, _HMDB_VIDEO_DIRS, classes, "HMDB51")
    cache: dict[str, dict[str, str]] = {}
    train: list[_Item] = []
    test: list[_Item] = []
    for label, cls in enumerate(classes):
        path = split_dir / f"{cls}_test_split{split}.txt"
        for n, line in _read_lines(path):
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DataError(f"{path}:{n}: expected '<video>.avi <0|1|2>', got {line!r}")
            if parts[1] == "0":
                continue
            name = parts[0]
            item = _Item(_locate(video_dir, cls, name, cache), f"{cls}/{name}", label,
                         f"{cls}/{name}")
            (train if parts[1] == "1" else test).append(item)
    for part, items in (("train (id 1)", train), ("test (id 2)", test)):
        if not items:
            raise DataError(f"split files {expected} list no {part} videos")
    layout = {"videos": _rel(video_dir, root), "split_files": _rel(split_dir, root)}
    return classes, train, test, layout


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # pragma: no cover - different drives on Windows
        return str(path)


# --------------------------------------------------------------------------- hold-out


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def hold_out(units: dict[int, list[str]], fraction: float, seed: int) -> set[str]:
    """Units (per class) moved from train to val; see the module docstring for the rule."""
    # Own stream of the master seed, so the hold-out does not move when other draws change.
    rng = np.random.default_rng((seed, 0x7A1))
    held: set[str] = set()
    for label in sorted(units):
        keys = sorted(set(units[label]))
        if fraction <= 0 or len(keys) < 2:
            continue
        n = min(len(keys) - 1, max(1, _round_half_up(fraction * len(keys))))
        held.update(keys[i] for i in rng.permutation(len(keys))[:n])
    return held


# --------------------------------------------------------------------------- prepare


def _reusable(out_dir: Path, info: dict[str, Any]) -> Path | None:
    """The existing manifest if it was built with the same settings and its files verify."""
    path = out_dir / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = read_manifest(path)
        if any(manifest.get(k) != info[k] for k in _REUSE_KEYS):
            return None
        verify(out_dir, manifest)
    except (DanceError, OSError, TypeError, KeyError):
        return None
    return path


def prepare_real(cfg: dict, out_dir: Path, progress: bool = True) -> Path:
    """Decode the configured UCF101/HMDB51 split into shards under `out_dir`; return manifest.

    An existing complete cache built with the same settings (manifest keys in
    `_REUSE_KEYS`) whose checksums verify is returned untouched — decoding all of UCF101
    takes long — even if the source videos have since been removed. All split files and listed videos are checked before decoding,
    so a layout error costs seconds, not a partial run.
    """
    import av

    ds = cfg["dataset"]
    name, split = ds["name"], int(ds["split"])
    frames, size = int(ds["frames"]), int(ds["size"])
    if name not in ("ucf101", "hmdb51"):
        raise DataError(f"prepare_real handles ucf101/hmdb51, not {name!r}")
    if not ds.get("root"):
        raise DataError(f"dataset.root must name the local {name} folder (it is empty)")
    root = Path(ds["root"]).expanduser()
    out_dir = Path(out_dir)
    info: dict[str, Any] = {
        "name": name, "root": str(ds["root"]), "split": split,
        "clip_shape": [frames, size, size, 3], "seed": int(cfg["seed"]),
        "val_fraction": float(ds["val_fraction"]),
        "skip_unreadable": bool(ds["skip_unreadable"]), "shard_size": int(ds["shard_size"]),
        "resize": RESIZE_BACKEND,
        "decoder": f"PyAV {av.__version__}", "video_format": VIDEO_FORMAT,
    }
    reused = _reusable(out_dir, info)
    if reused is not None:
        return reused
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root} (dataset.root of {name})")

    classes, train, test, layout = (_ucf101 if name == "ucf101" else _hmdb51)(root, split)
    missing = [it.path for it in [*train, *test] if not it.path.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(f"video listed in the {name} split files is missing: {missing[0]}{more}")

    units: dict[int, list[str]] = {}
    for it in train:
        units.setdefault(it.label, []).append(it.group)
    held = hold_out(units, info["val_fraction"], info["seed"])
    plan = {
        "train": [it for it in train if it.group not in held],
        "val": [it for it in train if it.group in held],
        "test": test,
    }

    staging = out_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=True)
    try:
        entries, skipped = _decode_all(plan, staging, ds, root, progress)
        _install(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    info.update(classes=classes, layout=layout, skipped=skipped, skipped_count=len(skipped))
    return write_manifest(out_dir, info, entries)


def _decode_all(plan: dict[str, list[_Item]], staging: Path, ds: dict, root: Path,
                progress: bool) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    from tqdm import tqdm

    frames, size = int(ds["frames"]), int(ds["size"])
    entries: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, str]] = []
    total = sum(len(v) for v in plan.values())
    with tqdm(total=total, desc=f"decode {ds['name']}", unit="video", file=sys.stderr,
              disable=not progress) as bar:
        for split in SPLITS:
            writer = ShardWriter(staging, split, int(ds["shard_size"]), frames, size)
            for it in plan[split]:
                try:
                    clip = decode_clip(it.path, frames, size)
                except UnreadableVideo as exc:
                    if not ds["skip_unreadable"]:
                        raise
                    skipped.append({"path": _rel(it.path, root), "reason": exc.reason,
                                    "split": split})
                else:
                    writer.add(clip, {"label": it.label, "difficulty": None,
                                      "source": it.source, "nuisance": None,
                                      "group": it.group})
                bar.update(1)
            entries[split] = writer.close()
    return entries, skipped


def _install(staging: Path, out_dir: Path) -> None:
    """Move the finished files into out_dir: old manifest first out, stale shards removed."""
    (out_dir / "manifest.json").unlink(missing_ok=True)
    new = {p.name for p in staging.iterdir()}
    stale = re.compile(rf"^({'|'.join(SPLITS)})_(\d{{3}}\.npy|meta\.csv)$")
    for p in out_dir.iterdir():
        if p.is_file() and stale.match(p.name) and p.name not in new:
            p.unlink()
    for name in sorted(new):
        os.replace(staging / name, out_dir / name)
