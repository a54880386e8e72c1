"""Host latency: several variants of a network timed side by side, batch 1 (method.md §7).

Why interleaved: on a shared, thermally throttling CPU, timing variant A for a minute and
then variant B for a minute lets drift (other jobs, frequency changes) fall on one of them.
Here every (repeat, clip) round runs every variant once, one after another, in an order
rotated each round, so slow periods hit all variants alike and no variant always runs
right after the same other one (cache state). The statistic is the median over all timed
calls, with the inter-quartile range as its spread; the mean is reported but is sensitive
to outliers. Methodology: docs/measurement.md, "Host latency".

The conv kernel PyTorch picks depends on the input shape (see :mod:`dance.nn.conv`), so
every result carries a backend audit of each variant, and a ratio to the reference is only
reported between variants whose convs ran on the same kernels.
"""

from __future__ import annotations

import copy
import gc
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from dance.measure.stats import summarise
from dance.nn import conv as nnconv

Variant = Callable[[Tensor], Any]
Clock = Callable[[], float]


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo `model name`, else platform.processor())."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment(device: torch.device | None = None) -> dict[str, Any]:
    """What a latency number depends on besides the network: recorded with every result
    (with the GPU's name when the timed work ran on one)."""
    gpu = (torch.cuda.get_device_name(device) if device is not None and device.type == "cuda"
           else None)
    return {
        "device": str(device) if device is not None else "cpu",
        "gpu": gpu,
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch": torch.__version__,
        "conv_backend": nnconv.get_conv_backend(),
        "mkldnn_available": nnconv.mkldnn_available(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other processes share the cores; the 1-minute load average shows how busy it was.
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def rotated(names: Sequence[str], round_index: int) -> list[str]:
    """`names` rotated left by `round_index` (round k starts with the k-th variant)."""
    if not names:
        return []
    k = round_index % len(names)
    return [*names[k:], *names[:k]]


def synchronize(x: Tensor) -> None:
    """Wait for `x`'s GPU to finish its queued work (nothing to wait for on CPU): every
    timed region starts and ends with it, so a CUDA kernel is never timed at its launch."""
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


def _ratio_status(name: str, reference: str, audit: Mapping[str, Mapping[str, int]] | None,
                  ) -> str:
    """'reference', 'ok', or why a ratio to the reference would compare different kernels."""
    if name == reference:
        return "reference"
    if audit is None:
        return "ok (backends not audited)"
    ref, own = set(audit[reference]), set(audit[name])
    if ref != own:
        return (f"refused: {reference} ran on {', '.join(sorted(ref)) or 'no conv'}, "
                f"{name} on {', '.join(sorted(own)) or 'no conv'}")
    return "ok"


def time_variants(variants: Mapping[str, Variant], clips: Sequence[Tensor], warmup: int = 5,
                  repeats: int = 3, reference: str = "dense", clock: Clock = time.perf_counter,
                  audit: bool = True) -> dict[str, Any]:
    """Time every variant on every clip at batch 1, interleaved (module docstring).

    Order of work: (1) audit — each variant once on ``clips[0]`` with
    :func:`dance.nn.conv.conv_backend_audit`; (2) `warmup` untimed rounds on
    ``clips[i % len(clips)]``; (3) ``repeats × len(clips)`` timed rounds, round k running
    the variants in the order ``rotated(names, k)``. Each call is timed alone with `clock`
    (CUDA is synchronised; Python's GC is paused), under ``torch.inference_mode``.

    Returns ``{variants, reference, warmup, repeats, clips, schedule, seconds, summary,
    ratio, speedup, ratio_status, audit, environment}``: `seconds[name]` lists the timed
    calls in run order (index = repeat·len(clips) + clip), `summary[name]` is
    :func:`summarise` of it, ``ratio[name] = median(name) / median(reference)`` and
    ``speedup[name]`` its inverse; both are None when ``ratio_status[name]`` is a refusal
    (the variant's convs ran on other kernels than the reference's).
    """
    names = list(variants)
    if reference not in variants:
        raise ValueError(f"reference variant {reference!r} is not among {names}")
    if not clips:
        raise ValueError("time_variants needs at least one clip")
    if warmup < 0 or repeats < 1:
        raise ValueError(f"warmup must be >= 0 and repeats >= 1 (got {warmup}, {repeats})")

    seconds: dict[str, list[float]] = {n: [] for n in names}
    schedule: list[list[str]] = []
    audits: dict[str, dict[str, int]] | None = None
    gc_was_enabled = gc.isenabled()
    with torch.inference_mode():
        if audit:
            audits = {n: nnconv.conv_backend_audit(variants[n], clips[0]) for n in names}
        for w in range(warmup):
            clip = clips[w % len(clips)]
            for n in rotated(names, w):
                variants[n](clip)
            synchronize(clip)
        gc.collect()
        gc.disable()
        try:
            k = 0
            for _ in range(repeats):
                for clip in clips:
                    order = rotated(names, k)
                    schedule.append(order)
                    for n in order:
                        synchronize(clip)
                        start = clock()
                        variants[n](clip)
                        synchronize(clip)
                        seconds[n].append(clock() - start)
                    k += 1
        finally:
            if gc_was_enabled:
                gc.enable()

    summary = {n: summarise(seconds[n]) for n in names}
    status = {n: _ratio_status(n, reference, audits) for n in names}
    ref_median = summary[reference]["median"]
    ratio: dict[str, float | None] = {}
    speedup: dict[str, float | None] = {}
    for n in names:
        ok = status[n] == "reference" or status[n].startswith("ok")
        med = summary[n]["median"]
        ratio[n] = med / ref_median if ok and ref_median > 0 else None
        speedup[n] = ref_median / med if ok and med > 0 else None
    return {
        "variants": names,
        "reference": reference,
        "warmup": warmup,
        "repeats": repeats,
        "clips": len(clips),
        "schedule": schedule,
        "seconds": seconds,
        "summary": summary,
        "ratio": ratio,
        "speedup": speedup,
        "ratio_status": status,
        "audit": audits,
        "environment": environment(clips[0].device),
    }


def slow_path_check(model: nn.Module, clip: Tensor | Sequence[Tensor], warmup: int = 2,
                    repeats: int = 5, clock: Clock = time.perf_counter) -> dict[str, Any]:
    """Does PyTorch's own kernel choice penalise batch 1? Native batch 1 vs batch 2 per clip.

    Times, interleaved, (a) the model with plain ``nn.Conv3d`` at batch 1, (b) the same at
    batch 2 (the clip twice; time halved = per clip) and (c) batch 1 with every conv forced
    onto oneDNN, and audits the kernels of (a) and (b). `model` is copied, never changed.
    ``slow3d_at_batch1`` says whether any conv of (a) ran on ``Slow3d``;
    ``batch1_penalty`` = (a) / (b per clip); ``forced_mkldnn_speedup`` = (a) / (c);
    ``max_abs_diff`` compares the logits of (a) and (c) on the first clip.
    """
    clips = [clip] if isinstance(clip, Tensor) else list(clip)
    native = nnconv.use_native_convs(copy.deepcopy(model)).eval()
    fast = nnconv.use_fast_convs(copy.deepcopy(model)).eval()
    pairs = {id(c): torch.cat([c, c]) for c in clips}

    def forced(x: Tensor) -> Any:
        with nnconv.conv_backend("mkldnn"):
            return fast(x)

    variants: dict[str, Variant] = {
        "batch1-native": native,
        "batch2-native": lambda x: native(pairs[id(x)]),
        "batch1-mkldnn": forced,
    }
    res = time_variants(variants, clips, warmup, repeats, reference="batch1-native",
                        clock=clock, audit=False)
    with torch.inference_mode():
        b1 = nnconv.conv_backend_audit(native, clips[0])
        b2 = nnconv.conv_backend_audit(native, pairs[id(clips[0])])
        forced_audit = nnconv.conv_backend_audit(forced, clips[0])
        diff = float((native(clips[0]) - forced(clips[0])).abs().max())
    med = {n: res["summary"][n]["median"] for n in variants}
    per_clip_b2 = med["batch2-native"] / 2
    return {
        "batch1_audit": b1,
        "batch2_audit": b2,
        "forced_audit": forced_audit,
        "slow3d_at_batch1": "Slow3d" in b1,
        "slow3d_convs_at_batch1": b1.get("Slow3d", 0),
        "convs": sum(b1.values()),
        "batch1_native_ms": med["batch1-native"] * 1e3,
        "batch2_native_ms_per_clip": per_clip_b2 * 1e3,
        "batch1_mkldnn_ms": med["batch1-mkldnn"] * 1e3,
        "batch1_penalty": med["batch1-native"] / per_clip_b2 if per_clip_b2 > 0 else None,
        "forced_mkldnn_speedup": (med["batch1-native"] / med["batch1-mkldnn"]
                                  if med["batch1-mkldnn"] > 0 else None),
        "max_abs_diff": diff,
        "timed_calls": res["summary"]["batch1-native"]["n"],
        "environment": res["environment"],
    }
