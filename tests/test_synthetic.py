"""The generated data set: determinism, balance, real motion, honest difficulty, figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dance.config import validate
from dance.data import synthetic as syn_mod
from dance.data.shards import load_split
from dance.data.synthetic import CLASSES, WEIGHTS, generate, make_clip, render, sample_params
from dance.report.figures.samples import plot_samples


def tiny_cfg(seed: int = 0, train: int = 20, shard_size: int = 8, **syn) -> dict:
    return validate({"seed": seed, "dataset": {
        "frames": 8, "size": 32, "shard_size": shard_size,
        "synthetic": {"train_clips": train, "val_clips": 10, "test_clips": 20, **syn}}})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syn_a")
    generate(tiny_cfg(), out, progress=False)
    return out


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_same_seed_gives_byte_identical_files(data_dir, tmp_path):
    generate(tiny_cfg(), tmp_path, progress=False)
    a, b = manifest_of(data_dir), manifest_of(tmp_path)
    assert a["sha256"] == b["sha256"]
    assert (data_dir / "manifest.json").read_bytes() == (tmp_path / "manifest.json").read_bytes()


def test_other_seed_gives_other_data(data_dir, tmp_path):
    generate(tiny_cfg(seed=1), tmp_path, progress=False)
    a, b = manifest_of(data_dir)["sha256"], manifest_of(tmp_path)["sha256"]
    assert a.keys() == b.keys()
    assert all(a[f] != b[f] for f in a)


def test_clips_do_not_depend_on_split_size(data_dir, tmp_path):
    generate(tiny_cfg(train=30), tmp_path, progress=False)
    a, b = manifest_of(data_dir)["sha256"], manifest_of(tmp_path)["sha256"]
    # Train shards 0 and 1 (clips 0-15) are shared; val/test are untouched.
    for name in ("train_000.npy", "train_001.npy", "val_000.npy", "test_000.npy",
                 "test_001.npy", "val_meta.csv", "test_meta.csv"):
        assert a[name] == b[name], name
    assert a["train_002.npy"] != b["train_002.npy"]    # 4 vs 8 clips


def test_manifest_counts_shapes_balance(data_dir):
    m = manifest_of(data_dir)
    assert m["name"] == "synthetic"
    assert m["classes"] == list(CLASSES) and len(CLASSES) == 10
    assert m["clip_shape"] == [8, 32, 32, 3]
    assert m["seed"] == 0 and m["generator"]["weights"] == WEIGHTS
    assert "difficulty" in m and "d_slow" in m["difficulty"]
    for split, n in (("train", 20), ("val", 10), ("test", 20)):
        entry = m["splits"][split]
        assert entry["clips"] == n
        assert entry["class_counts"] == {str(c): n // 10 for c in range(10)}
        clips, meta, _ = load_split(data_dir, split)
        assert clips.shape == (n, 8, 32, 32, 3) and clips.dtype == np.uint8
        assert [int(r["index"]) for r in meta] == list(range(n))
        assert all(r["class_name"] == CLASSES[int(r["label"])] for r in meta)
        # Not blank: every clip has real pixel variation.
        assert clips.reshape(n, -1).std(axis=1).min() > 3


def test_generate_is_idempotent_and_repairs(data_dir, tmp_path):
    cfg = tiny_cfg()
    generate(cfg, tmp_path, progress=False)
    shard = tmp_path / "train_000.npy"
    before = shard.stat().st_mtime_ns
    generate(cfg, tmp_path, progress=False)
    assert shard.stat().st_mtime_ns == before            # up to date: nothing rewritten
    shard.write_bytes(b"corrupt")
    generate(cfg, tmp_path, progress=False)               # checksum mismatch: rebuilt
    assert manifest_of(tmp_path)["sha256"] == manifest_of(data_dir)["sha256"]
    generate(tiny_cfg(shard_size=32), tmp_path, progress=False)   # new layout: rebuilt
    assert manifest_of(tmp_path)["splits"]["train"]["shards"] == ["train_000.npy"]
    assert not (tmp_path / "train_001.npy").exists()       # stale shards removed


def test_difficulty_is_the_documented_formula(data_dir):
    _, meta, _ = load_split(data_dir, "train")
    for r in meta:
        d = float(r["difficulty"])
        assert 0.0 <= d <= 1.0
        terms = {k: float(r[f"d_{k}"]) for k in WEIGHTS}
        assert all(0.0 <= v <= 1.0 for v in terms.values())
        assert d == pytest.approx(sum(WEIGHTS[k] * terms[k] for k in WEIGHTS), abs=1e-3)
        motion = float(r["visible_motion"])
        assert terms["slow"] == pytest.approx(min(1, max(0, 1 - np.log10(motion))), abs=2e-3)
        assert terms["short"] == pytest.approx(min(1, 2 * (1 - float(r["action_fraction"]))),
                                               abs=1e-3)
        assert terms["occlusion"] == pytest.approx(min(1, float(r["hidden_fraction"]) / 0.5),
                                                   abs=1e-3)
        assert r["occluded"] == "True" or float(r["hidden_fraction"]) == 0.0
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


def test_dataset_reads_back_the_terms_that_sum_to_the_difficulty(data_dir):
    from dance.data.dataset import ClipDataset

    split = ClipDataset(data_dir, "test")
    assert set(split.difficulty_terms) == set(WEIGHTS)
    recombined = sum(WEIGHTS[k] * v for k, v in split.difficulty_terms.items())
    assert torch.allclose(recombined, split.difficulty, atol=1e-3)
    assert float(split.difficulty_terms["slow"].std()) > 0


def test_difficulty_tracks_nuisance():
    syn = tiny_cfg()["dataset"]["synthetic"]
    rows = [make_clip(3, "train", i, 8, 32, syn)[1] for i in range(400)]
    d = np.array([r["difficulty"] for r in rows])
    col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    dist, noise, speed = col["n_distractors"], col["noise_std"], col["speed"]
    assert all(w > 0 for w in WEIGHTS.values())
    # Each term rises with its nuisance (so, all else equal, so does the difficulty).
    for term, cause, sign in (("d_distract", col["n_decoys"] + dist, 1),
                              ("d_noise", noise, 1), ("d_contrast", col["contrast"], -1),
                              ("d_short", col["action_fraction"], -1),
                              ("d_slow", col["visible_motion"], -1),
                              ("d_occlusion", col["hidden_fraction"], 1)):
        order = np.argsort(sign * cause, kind="stable")
        assert np.all(np.diff(col[term][order]) >= -1e-3), term
        assert np.ptp(col[term]) > 0.3, term
    bg = col["background"]
    assert (col["d_background"][bg == "flat"] < col["d_background"][bg == "textured"].min()).all()
    # Clips with many distractors, strong noise and a moving background score harder.
    hard = (dist >= 3) & (noise > np.median(noise)) & (bg == "moving")
    easy = (dist <= 1) & (noise <= np.median(noise)) & (bg == "flat")
    assert hard.sum() >= 10 and easy.sum() >= 10
    assert d[hard].mean() > d[easy].mean() + 0.05
    assert np.corrcoef(d, speed)[0, 1] < -0.2                # slow clips are harder
    for c in range(10):                                       # ... in every class
        mine = [(r["speed"], r["visible_motion"]) for r in rows if r["label"] == c]
        assert np.corrcoef(np.array(mine).T)[0, 1] > 0.3, CLASSES[c]
    # Each nuisance actually varies across clips.
    assert len(set(r["shape"] for r in rows)) == len(syn_mod.SHAPES)
    assert {r["background"] for r in rows} == set(syn_mod.BACKGROUNDS)
    assert any(r["occluded"] for r in rows) and not all(r["occluded"] for r in rows)
    assert min(r["action_fraction"] for r in rows) < 0.8


def _clean(label: int, seed: int = 0, size: int = 48, frames: int = 8):
    syn = tiny_cfg()["dataset"]["synthetic"]
    params = sample_params(np.random.default_rng([seed, label]), label, frames, size, syn,
                           clean=True)
    clip, _ = render(params)
    return clip.astype(float), params


def _object_stats(label: int, seed: int):
    """Per frame: centroid (x, y), area, and the angle of marker-minus-centroid."""
    clip, params = _clean(label, seed)
    bg = params["background"]["colour"] * 255
    obj = np.abs(clip - bg).max(axis=-1) > 25
    mark = np.abs(clip - params["main"]["marker"] * 255).max(axis=-1) < 30
    ys, xs = np.mgrid[: clip.shape[1], : clip.shape[2]]
    out = []
    for t in range(clip.shape[0]):
        a = obj[t].sum()
        cx, cy = (xs * obj[t]).sum() / a, (ys * obj[t]).sum() / a
        mx, my = xs[mark[t]].mean(), ys[mark[t]].mean()
        out.append((cx, cy, a, np.arctan2(my - cy, mx - cx)))
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_motion_is_real(seed):
    s = {name: _object_stats(CLASSES.index(name), seed) for name in CLASSES}

    def steps(name, col):
        v = s[name][:, col]
        return np.diff(np.unwrap(v) if col == 3 else v)

    # Along the motion: every step > 1 px; across it: only sub-pixel mask jitter.
    for name, along, sign in (("translate_right", 0, 1), ("translate_left", 0, -1),
                              ("translate_down", 1, 1), ("translate_up", 1, -1)):
        assert (sign * steps(name, along) > 1.0).all(), name
        assert np.abs(steps(name, 1 - along)).max() < 0.6, name
        assert abs(s[name][-1, 1 - along] - s[name][0, 1 - along]) < 0.5, name
    # Image y points down: clockwise on screen is an increasing atan2 angle.
    assert (steps("rotate_cw", 3) > 0.15).all()
    assert (steps("rotate_ccw", 3) < -0.15).all()
    for name in ("rotate_cw", "rotate_ccw"):               # rotation, not translation
        assert np.ptp(s[name][:, 2]) < 0.25 * s[name][:, 2].mean()
    assert (steps("grow", 2) > 0).all() and s["grow"][-1, 2] > 1.5 * s["grow"][0, 2]
    assert (steps("shrink", 2) < 0).all() and s["shrink"][0, 2] > 1.5 * s["shrink"][-1, 2]
    for name, along, across in (("oscillate_h", 0, 1), ("oscillate_v", 1, 0)):
        d = steps(name, along)
        assert np.ptp(s[name][:, along]) > 3 and np.ptp(s[name][:, across]) < 0.5
        assert (d > 0.3).any() and (d < -0.3).any()      # goes back and forth


def test_object_is_static_outside_the_action_window():
    syn = tiny_cfg(min_action_fraction=0.25)["dataset"]["synthetic"]
    seen_partial = 0
    for i in range(40):
        rng = np.random.default_rng([7, i])
        p = sample_params(rng, 0, 8, 32, syn)                 # translate_right
        a0, a1 = p["action_start"], p["action_start"] + p["action_len"] - 1
        x = p["main"]["x"]
        assert np.all(np.diff(x[a0 : a1 + 1]) > 0)
        assert np.all(x[:a0] == x[a0]) and np.all(x[a1:] == x[a1])
        assert np.ptp(p["main"]["y"]) == 0
        seen_partial += p["action_len"] < 8
    assert seen_partial > 10


def test_samples_figure(data_dir, tmp_path):
    png, pdf = tmp_path / "fig" / "samples.png", tmp_path / "fig" / "samples.pdf"
    plot_samples(data_dir, png, pdf, per_class=2)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
    lines = png.with_suffix(".csv").read_text().splitlines()
    assert lines[0].startswith("row,label,class_name,slot,split,index,difficulty")
    assert len(lines) == 1 + 10 * 2
    _, meta, _ = load_split(data_dir, "test")
    for line in lines[1:]:
        row = line.split(",")
        assert meta[int(row[5])]["label"] == row[1]            # index really has that label
    assert not list(png.parent.glob(".*.tmp"))                 # atomic: no leftovers


def test_main_object_is_distinguishable():
    """The documented cues: only the main object has a marker; distractors are smaller and
    fainter than it (decoys included)."""
    syn = tiny_cfg(max_distractors=4)["dataset"]["synthetic"]
    n = 0
    for i in range(40):
        p = sample_params(np.random.default_rng([11, i]), i % 10, 8, 32, syn)
        main = p["main"]
        r0 = np.exp(np.log(main["r"]).mean()) if CLASSES[i % 10] in ("grow", "shrink") \
            else main["r"][0]
        bg = p["background"]["colour"]
        main_c = np.sqrt(np.mean((main["colour"] - bg) ** 2))
        for d in p["distractors"]:
            n += 1
            assert d["marker"] is None
            assert np.exp(np.log(d["r"]).mean()) <= 0.7 * r0 + 1e-9
            assert np.sqrt(np.mean((d["colour"] - bg) ** 2)) <= 0.9 * main_c + 1e-9
    assert n > 20


def test_samples_figure_on_other_shard_data(tmp_path):
    """Any shard-format folder works: other class count, no difficulty column."""
    from dance.data.shards import ShardWriter, write_manifest

    rng = np.random.default_rng(0)
    w = ShardWriter(tmp_path / "d", "test", 4, 3, 16)
    for i in range(7):
        w.add(rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8), {"label": i % 3})
    write_manifest(tmp_path / "d", {"name": "tiny", "classes": ["a", "b", "c"],
                                    "clip_shape": [3, 16, 16, 3], "seed": 0},
                   {"test": w.close()})
    png, pdf = tmp_path / "s.png", tmp_path / "s.pdf"
    plot_samples(tmp_path / "d", png, pdf, per_class=3)
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    rows = png.with_suffix(".csv").read_text().splitlines()[1:]
    assert len(rows) == 7 and all(r.split(",")[6] == "" for r in rows)


def test_temporal_mean_input_keeps_only_what_changes(data_dir):
    import torch

    from dance.data.dataset import ClipDataset, to_input

    rgb = ClipDataset(data_dir, "train")
    moving = ClipDataset(data_dir, "train", input_mode="rgb_minus_temporal_mean")
    x, r = rgb.inputs(slice(0, 4)), moving.inputs(slice(0, 4))
    # the same frames minus their mean over time: zero mean per pixel, same frame differences
    assert torch.allclose(r.mean(dim=2), torch.zeros_like(r.mean(dim=2)), atol=1e-5)
    assert torch.allclose(r.diff(dim=2), x.diff(dim=2), atol=1e-5)
    assert not torch.allclose(r, x)
    static = rgb.clips[:1, :1].expand(1, 8, 32, 32, 3)        # one frame repeated: no motion
    assert to_input(static, "rgb_minus_temporal_mean").abs().max() < 1e-5
    assert next(iter(moving.batches(4)))[0].equal(r)       # training batches get it too
    with pytest.raises(ValueError, match="allowed: rgb, rgb_minus_temporal_mean"):
        to_input(static, "flow")


def test_samples_figure_is_byte_identical_between_runs(data_dir, tmp_path):
    # Before, its PDF embedded /CreationDate and differed between identical runs.
    import time

    outs = []
    for run_no in range(2):
        png, pdf = tmp_path / f"{run_no}" / "s.png", tmp_path / f"{run_no}" / "s.pdf"
        plot_samples(data_dir, png, pdf, per_class=1)
        outs.append((png.read_bytes(), pdf.read_bytes()))
        time.sleep(1.1)                      # a creation date would now differ
    assert outs[0] == outs[1]
    assert b"CreationDate" not in outs[0][1]
