"""UCF101/HMDB51 loading: official layouts and splits, decoding, hold-out, errors, cache."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from dance.config import validate
from dance.data.shards import load_split
from dance.data.video import (
    UnreadableVideo,
    _resize_crop,
    decode_clip,
    hold_out,
    prepare_real,
    sample_indices,
)
from dance.errors import DataError

from videos import make_hmdb51, make_ucf101, write_corrupt, write_video

T, S = 4, 16


def config(name: str, root: Path, tmp_path: Path, **dataset) -> dict:
    ds = {"name": name, "root": str(root), "frames": T, "size": S, "shard_size": 5,
          "val_fraction": 0.2, **dataset}
    seed = ds.pop("seed", 0)
    return validate({"seed": seed, "work_dir": str(tmp_path / "work"), "dataset": ds})


def load_all(out: Path) -> dict[str, tuple[np.ndarray, list[dict[str, str]]]]:
    return {s: load_split(out, s)[:2] for s in ("train", "val", "test")}


def ucf_group(source: str) -> str:
    cls, name = source.split("/")
    group = re.search(r"_g(\d+)_", name).group(1)
    return f"{cls}/g{group}"


def check_clips(clips: np.ndarray) -> None:
    assert clips.dtype == np.uint8 and clips.shape[1:] == (T, S, S, 3)
    for clip in clips:
        assert clip.std() > 5  # a moving square over a background, not a constant frame
        assert any(not np.array_equal(clip[0], clip[t]) for t in range(1, T))  # it moves


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("layout,split", [("official", 1), ("flat", 2)])
def test_ucf101_end_to_end(tmp_path, layout, split):
    lay = make_ucf101(tmp_path / "ucf", layout=layout)
    out = tmp_path / "out"
    manifest_path = prepare_real(config("ucf101", tmp_path / "ucf", tmp_path, split=split),
                                 out, progress=False)
    manifest = json.loads(manifest_path.read_text())
    data = load_all(out)
    lists = lay["lists"][split]

    assert manifest["classes"] == lay["classes"]
    assert manifest["clip_shape"] == [T, S, S, 3]
    assert manifest["split"] == split and manifest["skipped_count"] == 0
    assert manifest["layout"]["videos"] == ("UCF-101" if layout == "official" else ".")
    train = [m["source"] for m in data["train"][1]]
    val = [m["source"] for m in data["val"][1]]
    test = [m["source"] for m in data["test"][1]]
    # Every listed video exactly once, test in split-file order, train+val = the train list.
    assert test == lists["test"]
    assert sorted(train + val) == sorted(lists["train"])
    assert [s for s in lists["train"] if s in set(train)] == train
    for clips, meta in data.values():
        check_clips(clips)
        for m in meta:
            assert int(m["label"]) == lay["classes"].index(m["source"].split("/")[0])
            assert m["group"] == ucf_group(m["source"])
    # Whole groups held out: no group in both train and val, every class has val clips.
    train_groups = {ucf_group(s) for s in train}
    val_groups = {ucf_group(s) for s in val}
    assert val_groups and not train_groups & val_groups
    assert {int(m["label"]) for m in data["val"][1]} == {0, 1, 2}
    # No generated difficulty, so no per-term correlations downstream.
    from dance.data.dataset import ClipDataset

    assert ClipDataset(out, "test").difficulty_terms == {}
    # The cached clips are the decoded source videos, in meta order.
    for split_name in ("train", "test"):
        clips, meta = data[split_name]
        for i in (0, len(meta) - 1):
            path = lay["videos_dir"] / meta[i]["source"]
            np.testing.assert_array_equal(clips[i], decode_clip(path, T, S))


@pytest.mark.parametrize("layout,split", [("official", 1), ("flat", 3)])
def test_hmdb51_end_to_end(tmp_path, layout, split):
    lay = make_hmdb51(tmp_path / "hmdb", layout=layout)
    out = tmp_path / "out"
    manifest = json.loads(prepare_real(
        config("hmdb51", tmp_path / "hmdb", tmp_path, split=split), out,
        progress=False).read_text())
    data = load_all(out)
    lists = lay["lists"][split]

    assert manifest["classes"] == sorted(lay["classes"])
    train = [m["source"] for m in data["train"][1]]
    val = [m["source"] for m in data["val"][1]]
    test = [m["source"] for m in data["test"][1]]
    assert test == lists["test"]
    assert sorted(train + val) == sorted(lists["train"])
    assert not set(lists["unused"]) & set(train + val + test)  # id 0 never used
    assert not set(train) & set(val)
    # Stratified per-video hold-out: each class has round(0.2 * 4) = 1 val video.
    assert sorted(int(m["label"]) for m in data["val"][1]) == [0, 1, 2]
    for clips, meta in data.values():
        check_clips(clips)
        for m in meta:
            assert int(m["label"]) == manifest["classes"].index(m["source"].split("/")[0])
    assert any("#20_Rock&Roll_(live)!" in s for s in train + val + test)


def test_prepare_is_deterministic(tmp_path):
    make_ucf101(tmp_path / "ucf", groups=4, clips_per_group=1)
    cfg = config("ucf101", tmp_path / "ucf", tmp_path, val_fraction=0.3)
    a = prepare_real(cfg, tmp_path / "a", progress=False)
    b = prepare_real(cfg, tmp_path / "b", progress=False)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)]
    assert digest[0] == digest[1]
    # The manifest pins every shard's sha256, so equal manifests mean equal shards.
    assert json.loads(a.read_text())["sha256"]
    prepare_real(config("ucf101", tmp_path / "ucf", tmp_path, val_fraction=0.3, seed=3),
                 tmp_path / "c", progress=False)
    val_a = [m["source"] for m in load_split(tmp_path / "a", "val")[1]]
    val_c = [m["source"] for m in load_split(tmp_path / "c", "val")[1]]
    assert val_a != val_c  # the seed drives the hold-out


def test_hold_out_rule():
    units = {0: [f"a/g{i:02d}" for i in range(18)], 1: ["b/g01", "b/g02", "b/g03"],
             2: ["c/g01"], 3: ["d/g01", "d/g02"]}
    held = hold_out(units, 0.1, seed=0)
    by_class = {k: [u for u in v if u in held] for k, v in units.items()}
    # round_half_up(1.8) = 2, max(1, 0.3 -> 0) = 1, a lone unit stays, never all units.
    assert [len(by_class[k]) for k in range(4)] == [2, 1, 0, 1]
    assert hold_out(units, 0.0, seed=0) == set()
    assert len([u for u in units[3] if u in hold_out(units, 0.5, seed=0)]) == 1
    # Deterministic and independent of list order; different seeds give different picks.
    shuffled = {k: list(reversed(v)) for k, v in reversed(list(units.items()))}
    assert hold_out(shuffled, 0.1, seed=0) == held
    assert len({frozenset(hold_out(units, 0.1, seed=s)) for s in range(5)}) > 1


# --------------------------------------------------------------------------- decoding


def test_decode_clip_samples_uniformly(tmp_path):
    path = write_video(tmp_path / "v.avi", frames=12, size=(40, 32), seed=1)
    every = decode_clip(path, 12, S)  # linspace(0, 11, 12) = every frame once
    assert every.shape == (12, S, S, 3)
    assert all(not np.array_equal(every[t], every[t + 1]) for t in range(11))
    np.testing.assert_array_equal(decode_clip(path, 4, S), every[[0, 4, 7, 11]])
    assert sample_indices(12, 4).tolist() == [0, 4, 7, 11]


def test_decode_clip_shorter_than_t_repeats_frames(tmp_path):
    path = write_video(tmp_path / "short.avi", frames=3, seed=2)
    three = decode_clip(path, 3, S)
    eight = decode_clip(path, 8, S)
    assert eight.shape == (8, S, S, 3)
    # round(linspace(0, 2, 8)) = 0 0 1 1 1 1 2 2
    np.testing.assert_array_equal(eight, three[[0, 0, 1, 1, 1, 1, 2, 2]])


@pytest.mark.parametrize("backend", ["pil-bilinear", "torch-bilinear-antialias"])
@pytest.mark.parametrize("h,w", [(32, 40), (40, 32)])
def test_resize_is_shorter_side_then_centre_crop(backend, h, w):
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:] = (0, 0, 255)
    edge = 4  # (40 - 32) / 2: exactly what the centre crop removes on each long side
    if w > h:
        frame[:, :edge], frame[:, -edge:] = (255, 0, 0), (0, 255, 0)
    else:
        frame[:edge], frame[-edge:] = (255, 0, 0), (0, 255, 0)
    out = _resize_crop(frame, S, backend)
    assert out.shape == (S, S, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - (0, 0, 255)).max() <= 1


def test_resize_backends_agree():
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (8, 10, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    pil = _resize_crop(smooth, 24, "pil-bilinear").astype(int)
    torch_ = _resize_crop(smooth, 24, "torch-bilinear-antialias").astype(int)
    assert np.abs(pil - torch_).mean() < 4


def test_decode_clip_errors_name_the_path(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "none.avi"))):
        decode_clip(tmp_path / "none.avi", T, S)
    bad = write_corrupt(tmp_path / "bad.avi")
    with pytest.raises(UnreadableVideo, match=re.escape(str(bad))):
        decode_clip(bad, T, S)
    empty = write_video(tmp_path / "empty.avi", frames=0)
    with pytest.raises(UnreadableVideo, match="no decodable video frames"):
        decode_clip(empty, T, S)


# --------------------------------------------------------------------------- errors


def assert_no_output(out: Path) -> None:
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("*.npy")) and not list(out.glob("*.csv"))
    assert not (out / ".staging").exists()


def test_missing_root(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(root))):
        prepare_real(config("ucf101", root, tmp_path), tmp_path / "out", progress=False)


def test_missing_split_files_name_the_expected_path(tmp_path):
    lay = make_ucf101(tmp_path / "ucf", groups=3, clips_per_group=1)
    missing = lay["split_dir"] / "trainlist01.txt"
    missing.unlink()
    with pytest.raises(DataError, match=re.escape(str(missing))):
        prepare_real(config("ucf101", tmp_path / "ucf", tmp_path), tmp_path / "o1",
                     progress=False)
    for f in lay["split_dir"].iterdir():
        f.unlink()
    with pytest.raises(DataError, match=re.escape(str(lay["split_dir"] / "classInd.txt"))):
        prepare_real(config("ucf101", tmp_path / "ucf", tmp_path), tmp_path / "o2",
                     progress=False)

    lay = make_hmdb51(tmp_path / "hmdb", videos_per_class=4)
    missing = lay["split_dir"] / "cartwheel_test_split2.txt"
    missing.unlink()
    with pytest.raises(DataError, match=re.escape(str(missing))):
        prepare_real(config("hmdb51", tmp_path / "hmdb", tmp_path, split=2), tmp_path / "o3",
                     progress=False)
    assert_no_output(tmp_path / "o3")


@pytest.mark.parametrize("name", ["ucf101", "hmdb51"])
def test_missing_listed_video(tmp_path, name):
    maker = make_ucf101 if name == "ucf101" else make_hmdb51
    lay = maker(tmp_path / "data", **({"groups": 3, "clips_per_group": 1}
                                      if name == "ucf101" else {"videos_per_class": 4}))
    gone = lay["videos_dir"] / lay["lists"][1]["test"][-1]
    gone.unlink()
    out = tmp_path / "out"
    with pytest.raises(DataError, match=re.escape(str(gone))):
        prepare_real(config(name, tmp_path / "data", tmp_path), out, progress=False)
    assert not out.exists()  # checked before anything is written


@pytest.mark.parametrize("name", ["ucf101", "hmdb51"])
def test_corrupt_video_raises_or_is_skipped(tmp_path, name):
    maker = make_ucf101 if name == "ucf101" else make_hmdb51
    lay = maker(tmp_path / "data", corrupt=True,
                **({"groups": 3, "clips_per_group": 1} if name == "ucf101"
                   else {"videos_per_class": 4}))
    bad = lay["corrupt"]
    out = tmp_path / "out"
    with pytest.raises(DataError, match=re.escape(str(bad))):
        prepare_real(config(name, tmp_path / "data", tmp_path), out, progress=False)
    assert_no_output(out)  # the staging folder is removed, nothing half-written remains

    manifest = json.loads(prepare_real(
        config(name, tmp_path / "data", tmp_path, skip_unreadable=True), out,
        progress=False).read_text())
    rel = bad.relative_to(tmp_path / "data").as_posix()
    assert manifest["skipped_count"] == 1
    assert [s["path"] for s in manifest["skipped"]] == [rel]
    assert manifest["skipped"][0]["split"] == "test"
    test = [m["source"] for m in load_split(out, "test")[1]]
    listed = lay["lists"][1]["test"]
    assert len(test) == len(listed) - 1 and bad.name not in " ".join(test)


def test_label_disagreeing_with_classind(tmp_path):
    lay = make_ucf101(tmp_path / "ucf", groups=3, clips_per_group=1)
    path = lay["split_dir"] / "trainlist01.txt"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].rsplit(" ", 1)[0] + " 3"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:1")):
        prepare_real(config("ucf101", tmp_path / "ucf", tmp_path), tmp_path / "out",
                     progress=False)


def test_listed_name_matched_case_insensitively(tmp_path):
    # The official UCF101 lists and files disagree in letter case for some names.
    lay = make_ucf101(tmp_path / "ucf", groups=3, clips_per_group=1)
    rel = lay["lists"][1]["test"][0]
    disk = lay["videos_dir"] / rel
    disk.rename(disk.with_name(disk.name.upper().replace(".AVI", ".avi")))
    out = tmp_path / "out"
    prepare_real(config("ucf101", tmp_path / "ucf", tmp_path), out, progress=False)
    clips, meta, _ = load_split(out, "test")
    assert meta[0]["source"] == rel
    np.testing.assert_array_equal(
        clips[0], decode_clip(disk.with_name(disk.name.upper().replace(".AVI", ".avi")), T, S))


# --------------------------------------------------------------------------- cache reuse


def test_cache_reused_only_with_same_settings(tmp_path):
    make_ucf101(tmp_path / "ucf", groups=3, clips_per_group=2)
    out = tmp_path / "out"
    cfg = config("ucf101", tmp_path / "ucf", tmp_path, shard_size=2)
    first = prepare_real(cfg, out, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert prepare_real(cfg, out, progress=False) == first
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

    bigger = config("ucf101", tmp_path / "ucf", tmp_path, shard_size=2, size=24)
    manifest = json.loads(prepare_real(bigger, out, progress=False).read_text())
    assert manifest["clip_shape"] == [T, 24, 24, 3]
    fewer = config("ucf101", tmp_path / "ucf", tmp_path, shard_size=100, size=24)
    manifest = json.loads(prepare_real(fewer, out, progress=False).read_text())
    # Stale shards of the earlier, finer-sharded build are removed.
    assert sorted(p.name for p in out.glob("*.npy")) == sorted(manifest["sha256"].keys() -
                                                               {"train_meta.csv",
                                                                "val_meta.csv",
                                                                "test_meta.csv"})
    assert load_split(out, "train")[0].shape[1:] == (T, 24, 24, 3)
