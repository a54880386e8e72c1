"""Tiny real videos and UCF101/HMDB51 folder layouts for the data-loading tests.

The videos are encoded with PyAV (the same library that decodes them), a few frames of a
coloured square moving over a coloured background, so decoded content varies over time
and between videos. The split files follow the official formats, CRLF line endings and
trailing spaces included, because the official files have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

UCF_CLASSES = ("ApplyEyeMakeup", "BasketballDunk", "YoYo")
HMDB_CLASSES = ("brush_hair", "cartwheel", "wave")


def write_video(path: str | Path, frames: int = 12, size: tuple[int, int] = (40, 32),
                fps: int = 10, seed: int = 0, codec: str = "mpeg4") -> Path:
    """Encode `frames` frames of width×height `size`: a square moving over a background.

    `frames=0` gives a valid container whose video stream has no frames.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    side = max(2, min(width, height) // 3)
    background = rng.integers(0, 120, 3)
    colour = rng.integers(140, 256, 3)
    x0, y0 = rng.integers(0, width - side), rng.integers(0, height - side)
    vx, vy = rng.integers(2, 5, 2) * rng.choice([-1, 1], 2)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        container.start_encoding()  # writes the header even when frames == 0
        for t in range(frames):
            img = np.empty((height, width, 3), np.uint8)
            img[:] = background
            x = int(abs((x0 + vx * t) % (2 * (width - side)) - (width - side)))
            y = int(abs((y0 + vy * t) % (2 * (height - side)) - (height - side)))
            img[y:y + side, x:x + side] = colour
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_corrupt(path: str | Path, seed: int = 0, n_bytes: int = 3000) -> Path:
    """Random bytes under a video name: exists, but no decoder accepts it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).bytes(n_bytes))
    return path


def _write_lines(path: Path, lines: list[str], ending: str = "\r\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + ending for line in lines).encode())


def make_ucf101(root: str | Path, classes: tuple[str, ...] = UCF_CLASSES, groups: int = 6,
                clips_per_group: int = 2, layout: str = "official", corrupt: bool = False,
                frames: int = 12, size: tuple[int, int] = (40, 32)) -> dict[str, Any]:
    """The UCF101 layout with `groups` groups per class; split k tests groups g≡k (mod 3).

    Returns {"classes", "videos_dir", "split_dir", "lists": {k: {"train": [rel], "test":
    [rel]}}, "corrupt": path or None}; rel is "<Class>/<file>" as in the split files.
    `corrupt` adds one undecodable clip in group 1 of the first class (test in split 1).
    """
    root = Path(root)
    videos = root / "UCF-101" if layout == "official" else root
    split_dir = root / "ucfTrainTestlist"
    _write_lines(split_dir / "classInd.txt", [f"{i + 1} {c}" for i, c in enumerate(classes)])
    entries: list[tuple[str, int, int]] = []  # (rel, label, group)
    seed = 0
    for label, cls in enumerate(classes):
        for g in range(1, groups + 1):
            for c in range(1, clips_per_group + 1):
                rel = f"{cls}/v_{cls}_g{g:02d}_c{c:02d}.avi"
                write_video(videos / rel, frames=frames, size=size, seed=seed)
                seed += 1
                entries.append((rel, label, g))
    bad = None
    if corrupt:
        rel = f"{classes[0]}/v_{classes[0]}_g01_c{clips_per_group + 1:02d}.avi"
        bad = write_corrupt(videos / rel)
        entries.append((rel, 0, 1))
    lists: dict[int, dict[str, list[str]]] = {}
    for k in (1, 2, 3):
        train = [(r, lab) for r, lab, g in entries if (g - 1) % 3 != k - 1]
        test = [r for r, _, g in entries if (g - 1) % 3 == k - 1]
        _write_lines(split_dir / f"trainlist0{k}.txt", [f"{r} {lab + 1}" for r, lab in train])
        _write_lines(split_dir / f"testlist0{k}.txt", test)
        lists[k] = {"train": [r for r, _ in train], "test": test}
    return {"classes": list(classes), "videos_dir": videos, "split_dir": split_dir,
            "lists": lists, "corrupt": bad}


def make_hmdb51(root: str | Path, classes: tuple[str, ...] = HMDB_CLASSES,
                videos_per_class: int = 7, layout: str = "official", corrupt: bool = False,
                frames: int = 12, size: tuple[int, int] = (40, 32)) -> dict[str, Any]:
    """The HMDB51 layout; in split k video i is test if i≡k-1 (mod 3), the last is unused.

    Returns {"classes", "videos_dir", "split_dir", "lists": {k: {"train", "test",
    "unused": [rel]}}, "corrupt": path or None}. File names contain '#', '&', '(' and '!'
    like real HMDB51 names. `corrupt` adds one undecodable test video to the first class.
    """
    root = Path(root)
    videos = root / "hmdb51_org" if layout == "official" else root
    split_dir = root / "testTrainMulti_7030_splits"
    lists: dict[int, dict[str, list[str]]] = {
        k: {"train": [], "test": [], "unused": []} for k in (1, 2, 3)}
    bad = None
    seed = 100
    for ci, cls in enumerate(classes):
        names = []
        for i in range(videos_per_class):
            prefix = "#20_Rock&Roll_(live)!" if i == 0 else f"Movie_{i}"
            name = f"{prefix}_{cls}_u_nm_np1_fr_goo_{i}.avi"
            write_video(videos / cls / name, frames=frames, size=size, seed=seed)
            seed += 1
            names.append(name)
        if corrupt and ci == 0:
            name = f"Broken_{cls}_u_nm_np1_fr_goo_0.avi"
            bad = write_corrupt(videos / cls / name)
            names.append(name)
        for k in (1, 2, 3):
            lines = []
            for i, name in enumerate(names):
                if bad is not None and ci == 0 and name == bad.name:
                    ident = 2
                elif i == videos_per_class - 1:
                    ident = 0
                else:
                    ident = 2 if i % 3 == k - 1 else 1
                lines.append(f"{name} {ident} ")
                lists[k][("unused", "train", "test")[ident]].append(f"{cls}/{name}")
            _write_lines(split_dir / f"{cls}_test_split{k}.txt", lines, ending="\n")
    return {"classes": sorted(classes), "videos_dir": videos, "split_dir": split_dir,
            "lists": lists, "corrupt": bad}
