"""`python -m dance bench`: host latency (and RAPL energy) of network variants, side by side.

Everything that makes the numbers comparable lives here, once: the same test clips for
every variant, one thread count, one conv-backend policy and one memory format for all,
interleaved timing (:func:`dance.measure.latency.time_variants`), a backend audit per
variant (no ratio between variants whose convs ran on other kernels), and energy only as
measured by RAPL — when RAPL is not readable the energy column stays empty and
``energy_status`` says why. Methodology: docs/measurement.md, "Host latency" and "RAPL".
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dance.data.dataset import open_split
from dance.measure import latency, nvml, rapl
from dance.measure import variants as variant_registry
from dance.nn.conv import conv_backend

BENCH_COLUMNS = ["model", "stage", "variant", "median_ms", "p25_ms", "p75_ms", "iqr_ms", "n",
                 "speedup_vs_dense", "speedup_status", "threads", "cpu", "load_average_1m", "torch",
                 "conv_backend", "memory_format", "backend_audit", "energy_j_per_clip",
                 "energy_status"]
DEFAULT_VARIANTS = ("dense", "dense-native", "dense-channels-last")


def parse_variants(text: str | Sequence[str] | None) -> list[str]:
    """Comma list (or sequence) of variant names, reference ``dense`` first and once."""
    if text is None:
        names = list(DEFAULT_VARIANTS)
    elif isinstance(text, str):
        names = [n.strip() for n in text.split(",") if n.strip()]
    else:
        names = list(text)
    ref = variant_registry.REFERENCE
    return [ref, *dict.fromkeys(n for n in names if n != ref)]


EnergyMeter = rapl.RaplMeter | nvml.NvmlMeter


def energy_meter(device: torch.device) -> EnergyMeter:
    """The meter of the processor the variants run on: NVML for a CUDA GPU, RAPL for the
    CPU packages."""
    if device.type == "cuda":
        return nvml.NvmlMeter(device.index if device.index is not None else 0)
    return rapl.RaplMeter()


def measure_energy(variants: Mapping[str, Callable[[Tensor], Any]], clips: Sequence[Tensor],
                   window_s: float, meter: EnergyMeter | None = None,
                   clock: Callable[[], float] = time.perf_counter) -> dict[str, dict[str, Any]]:
    """Per variant: joules per clip, each variant running alone for `window_s` seconds.

    Clips cycle; the meter is sampled after every call (so a RAPL wrap is seen in time; the
    NVML meter samples on its own thread). On CUDA every call is synchronised, so the window
    holds exactly the work of the clips it counts. Without a readable meter every entry is
    ``{"j_per_clip": None, "status": reason}``.
    """
    meter = meter or energy_meter(clips[0].device)
    ok, reason = meter.available()
    if not ok:
        return {n: {"j_per_clip": None, "status": reason} for n in variants}
    out = {}
    with torch.inference_mode():
        for name, fn in variants.items():
            fn(clips[0])  # back in cache after the others ran
            latency.synchronize(clips[0])
            calls = 0
            meter.start()
            start = clock()
            while calls == 0 or clock() - start < window_s:
                fn(clips[calls % len(clips)])
                latency.synchronize(clips[0])
                calls += 1
                meter.sample()
            joules = meter.stop()
            out[name] = {
                "j_per_clip": joules / calls,
                "avg_power_w": joules / meter.seconds if meter.seconds > 0 else None,
                "status": (f"measured: {meter.describe()}; {calls} clips in "
                           f"{meter.seconds:.2f} s alone"),
            }
    return out


def bench_rows(model_name: str, stage: str, timing: dict[str, Any],
               energy: Mapping[str, Mapping[str, Any]], memory_format: str,
               ) -> list[dict[str, Any]]:
    """One CSV row per variant from a :func:`time_variants` result and energy entries."""
    env = timing["environment"]
    rows = []
    for name in timing["variants"]:
        s = timing["summary"][name]
        audit = (timing["audit"] or {}).get(name)
        rows.append({
            "model": model_name, "stage": stage, "variant": name,
            "median_ms": s["median"] * 1e3, "p25_ms": s["p25"] * 1e3, "p75_ms": s["p75"] * 1e3,
            "iqr_ms": s["iqr"] * 1e3, "n": s["n"],
            "speedup_vs_dense": timing["speedup"][name],
            "speedup_status": timing["ratio_status"][name],
            "threads": env["threads"], "cpu": env["cpu"],
            "load_average_1m": env["load_average_1m"], "torch": env["torch"],
            "conv_backend": env["conv_backend"], "memory_format": memory_format,
            "backend_audit": json.dumps(audit, sort_keys=True) if audit is not None else None,
            "energy_j_per_clip": energy[name]["j_per_clip"],
            "energy_status": energy[name]["status"],
        })
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Plain-text table: variant, median ms, IQR ms, speed-up vs dense, backend."""
    def backend(row: Mapping[str, Any]) -> str:
        audit = json.loads(row["backend_audit"]) if row["backend_audit"] else {}
        return ", ".join(f"{k}×{v}" for k, v in audit.items()) or "-"

    head = ("variant", "median ms", "IQR ms", "speed-up vs dense", "backend")
    body = [(r["variant"], f"{r['median_ms']:.2f}", f"{r['iqr_ms']:.2f}",
             f"{r['speedup_vs_dense']:.2f}×" if r["speedup_vs_dense"] is not None
             else "— (other kernels)", backend(r)) for r in rows]
    widths = [max(len(str(x[i])) for x in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in (head, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_bench(cfg: dict, model_name: str, stage: str = "baseline",
              variant_names: str | Sequence[str] | None = None,
              meter: EnergyMeter | None = None, out: Path | None = None,
              ) -> tuple[Path, list[dict[str, Any]]]:
    """Time the variants of `model_name`'s `stage` network on the host; write the CSV (and
    the JSON with per-call times beside it) to `out` (default ``Paths.bench(model, stage)``);
    return (csv path, rows)."""
    from dance import runtime
    from dance.io import write_csv, write_json
    from dance.models.trained import load_trained
    from dance.paths import Paths

    bench = cfg["bench"]
    threads = bench["threads"] or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    runtime.seed_everything(cfg["seed"])
    paths = Paths(cfg)
    test = open_split(cfg, "test")
    n = min(bench["clips"], len(test))
    memory_format = "channels_last_3d" if bench["channels_last"] else "contiguous"
    fmt = torch.channels_last_3d if bench["channels_last"] else torch.contiguous_format
    device = runtime.resolve_device(cfg["device"])
    clips = [test.inputs(slice(i, i + 1)).to(device).contiguous(memory_format=fmt)
             for i in range(n)]
    model = load_trained(cfg, model_name, stage, test.num_classes).to(device).eval()
    names = parse_variants(variant_names)

    with conv_backend(bench["conv_backend"]):
        fns = {name: variant_registry.build_variant(name, cfg, model_name, stage,
                                                    copy.deepcopy(model)) for name in names}
        with torch.inference_mode():
            ref_logits = fns[names[0]](clips[0])
            diffs = {name: float((fn(clips[0]) - ref_logits).abs().max())
                     for name, fn in fns.items()}
        timing = latency.time_variants(fns, clips, bench["warmup"], bench["repeats"],
                                       reference=variant_registry.REFERENCE)
        energy = measure_energy(fns, clips, bench["energy_window_s"], meter)
        slow = (latency.slow_path_check(model, clips[: min(3, n)], warmup=1,
                                        repeats=bench["repeats"]) if device.type == "cpu"
                else {"skipped": f"{device.type}: the batch-1 Slow3d path is a CPU kernel"})

    rows = bench_rows(model_name, stage, timing, energy, memory_format)
    out = Path(out) if out is not None else paths.bench(model_name, stage)
    write_csv(out, rows, BENCH_COLUMNS)
    write_json(out.with_suffix(".json"), {
        "model": model_name, "stage": stage, "config": bench, "clip_indices": list(range(n)),
        "memory_format": memory_format, "max_abs_logit_diff_vs_dense": diffs,
        "timing": timing, "energy": energy, "slow_path_check": slow,
    })
    return out, rows
