"""Dense vs pruned execution at fixed keep fractions (`python -m dance aap-keep-grid`).

A development measurement independent of training: a randomly initialised backbone (the
speed-up depends on the masks, not on the weights), rewritten like every bench variant
(BatchNorm folded, padding-only taps dropped, convs through :func:`dance.nn.conv3d`), and
AAP in ``pruned`` mode with *forced* masks: per prunable layer a contiguous run of
round(f_FR·T) frames at a random start, round(f_CH·C) channels rounded to a multiple of 8
(random), a square blob of ≈ f_FE·HW features at a random place (:func:`feature_blob`,
the shape the trained controllers keep); layers under `min_layer_share` of the MACs stay
dense and layers with fewer than `min_frames` input frames keep all frames (as with the
default controller). Dense and every keep setting are timed interleaved
(:func:`dance.measure.latency.time_variants`, batch 1) on random clips; the exact
whole-network MAC ratio of the masks gives the ideal speed-up. With one thread the clock is
the CPU time of the timing thread (robust against other processes on shared cores).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import torch

from dance.aap.model import AAPNet
from dance.measure.latency import time_variants
from dance.measure.macs import batch_effective_macs
from dance.models import build_model
from dance.nn import use_fast_convs
from dance.nn.fold import prepare_for_timing


def forced_masks(net: AAPNet, frames: float, channels: float, features: float,
                 gen: torch.Generator, min_layer_share: float = 0.03,
                 channel_multiple: int = 8, min_frames: int = 4) -> dict[str, tuple]:
    """Masks [1,·] per prunable layer at the given keep fractions (module docstring)."""
    out = {}
    for name, (c, t, h, w), mac in zip(net.names, net.macs["in_shapes"], net.macs["layer_macs"],
                                       strict=True):
        ones = (torch.ones(1, t, dtype=torch.bool), torch.ones(1, c, dtype=torch.bool),
                torch.ones(1, h, w, dtype=torch.bool))
        if mac / net.macs["total"] < min_layer_share:
            out[name] = ones
            continue
        nf = max(1, round(frames * t)) if t >= min_frames else t
        start = int(torch.randint(0, t - nf + 1, (1,), generator=gen))
        fr = torch.zeros(1, t, dtype=torch.bool)
        fr[0, start:start + nf] = True
        k = min(c, max(channel_multiple,
                       int(round(channels * c / channel_multiple)) * channel_multiple))
        ch = torch.zeros(1, c, dtype=torch.bool)
        ch[0, torch.randperm(c, generator=gen)[:k]] = True
        out[name] = (fr, ch, feature_blob(h, w, features, gen))
    return out


def feature_blob(h: int, w: int, share: float, gen: torch.Generator) -> torch.Tensor:
    """[1,H,W] mask keeping a square of about `share`·HW features at a random place: the
    shape trained controllers produce (one compact blob around the moving actor)."""
    side_h = min(h, max(1, round(h * share ** 0.5)))
    side_w = min(w, max(1, round(share * h * w / side_h)))
    r0 = int(torch.randint(0, h - side_h + 1, (1,), generator=gen))
    c0 = int(torch.randint(0, w - side_w + 1, (1,), generator=gen))
    fe = torch.zeros(1, h, w, dtype=torch.bool)
    fe[0, r0:r0 + side_h, c0:c0 + side_w] = True
    return fe


def keep_grid(model_name: str, cases: Sequence[tuple[float, float, float]], width: float = 0.25,
              frames: int = 8, size: int = 64, threads: int = 1, repeats: int = 8,
              clips: int = 3, seed: int = 0, frame_exec: str = "auto") -> dict[str, Any]:
    """Time dense vs pruned at each (f_FR, f_CH, f_FE) of `cases`; returns rows with the
    exact MAC ratio, measured and ideal speed-up and realised/ideal."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    shape = (3, frames, size, size)
    model = build_model(model_name, 10, width=width, frames=frames, size=size).eval()
    model = use_fast_convs(prepare_for_timing(model, shape))
    ref = AAPNet(copy.deepcopy(model), None, input_shape=shape)
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randn(1, *shape, generator=gen) for _ in range(clips)]
    variants: dict[str, Any] = {"dense": model}
    ratios = {}
    for ff, fc, fe in cases:
        masks = forced_masks(ref, ff, fc, fe, gen)
        net = AAPNet(copy.deepcopy(model), None, input_shape=shape, eval_mode="pruned",
                     frame_exec=frame_exec)
        net.state.forced = masks
        net.state.fixed_tau = torch.zeros(len(net.names), 3)
        net.prepare_pruned()
        kept = ref.macs["fixed_macs"] + sum(
            int(batch_effective_macs(w.conv, s, *masks[w.name])[0])
            for w, s in zip(net.wrappers, net.macs["in_shapes"], strict=True))
        key = f"frames {ff:.2f} channels {fc:.2f} features {fe:.2f}"
        ratios[key] = kept / ref.macs["total"]
        variants[key] = net
    clock = time.thread_time if threads == 1 else time.perf_counter
    res = time_variants(variants, inputs, warmup=3, repeats=repeats, audit=False, clock=clock)
    dense = res["summary"]["dense"]["median"]
    rows = []
    for key, ratio in ratios.items():
        med = res["summary"][key]["median"]
        measured, ideal = dense / med, 1.0 / ratio
        rows.append({"setting": key, "macs_ratio": ratio, "median_ms": med * 1e3,
                     "speedup": measured, "ideal": ideal, "realised_over_ideal": measured / ideal})
    return {"model": model_name, "width": width, "clip": list(shape), "threads": threads,
            "clock": clock.__name__, "dense_median_ms": dense * 1e3, "rows": rows,
            "environment": res["environment"]}
