"""`python -m dance devices-summary`: ``devices.csv`` — every device × model × method.

Rows: the host's ONNX Runtime timing (device ``host_cpu``, from ``bench_onnx.csv``) and each
edge device's result (``device_<device>.json``: measured, or not measured and why). Columns:
latency median and IQR (ms), speed-up vs the dense model on the same device, average power
(W) and energy per clip (J) over the model's power window, energy efficiency (clips per J),
status, the device's outputs against PyTorch's (max |Δ logits|, clips with other pruning
decisions; ``measured, wrong results`` and no speed-up when they differ), the execution
providers each model ran on, and beside them the paper's speed-up for that device, labelled "paper-reported"
(Jetson Nano 1.37×, Snapdragon 8 Gen 1 2.22×; DANCE abstract, arXiv 2603.17275) — never
mixed into the measured columns. A device that was not measured gets one row per model
with empty measured columns. The GPU's rows (``results/devices/gpu/result.json``, written by
``scripts/gpu_check.sh`` on a CUDA machine) appear only once a GPU check has run.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from dance.devices import logs
from dance.devices.drivers import DEVICES, PAPER_SPEEDUP
from dance.io import markdown_table, read_json, write_csv, write_text

COLUMNS = ["device", "model", "method", "status", "latency_median_ms", "latency_iqr_ms",
           "n", "speedup_vs_dense", "avg_power_w", "idle_power_w", "energy_j_per_clip",
           "energy_efficiency_clips_per_j", "energy_status", "max_abs_diff",
           "clips_with_other_decisions", "results_check", "providers", "paper_speedup",
           "paper_speedup_label", "source"]
PAPER_LABEL = "paper-reported (DANCE, arXiv 2603.17275, abstract)"


def device_row(device: str, model: str, method: str, status: str, **kw: Any,
               ) -> dict[str, Any]:
    """One ``devices.csv`` row: every column present, paper speed-up beside, clips/J derived."""
    paper = PAPER_SPEEDUP.get(device)
    row = {c: None for c in COLUMNS}
    row.update(device=device, model=model, method=method, status=status,
               paper_speedup=paper if method != "dense" else None,
               paper_speedup_label=PAPER_LABEL if paper and method != "dense" else None)
    row.update(kw)
    energy = row.get("energy_j_per_clip")
    row["energy_efficiency_clips_per_j"] = 1.0 / energy if energy else None
    return row


def host_rows(bench_csv: Path, export_check: dict[str, Any]) -> list[dict[str, Any]]:
    """The host's ONNX Runtime rows; their outputs were checked at export (`export_check`)."""
    with open(bench_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    num = lambda v: float(v) if v not in ("", None) else None  # noqa: E731
    checks = export_check.get("models", {})

    def check(r: dict[str, str]) -> dict[str, Any]:
        c = checks.get(f"{r['model']}:{r['method']}")
        if c is None:
            return {"results_check": "not checked: not in the export check"}
        same = c.get("same_top1") and c.get("clips_with_other_decisions") in (0, None)
        return {"max_abs_diff": c.get("max_abs_diff"),
                "clips_with_other_decisions": c.get("clips_with_other_decisions"),
                "results_check": ("as PyTorch (export check)" if same else
                                  "differs from PyTorch (export check)")}

    return [device_row("host_cpu", r["model"], r["method"], "measured", **check(r),
                 providers=r.get("providers") or None,
                 latency_median_ms=num(r["median_ms"]), latency_iqr_ms=num(r["iqr_ms"]),
                 n=int(r["n"]), speedup_vs_dense=num(r["speedup_vs_dense"]),
                 energy_j_per_clip=num(r["energy_j_per_clip"]),
                 energy_status=r["energy_status"],
                 source=f"ONNX Runtime {r['onnxruntime']}, {r['threads']} threads, {r['cpu']}")
            for r in rows]


def device_rows(result: dict[str, Any], methods: list[tuple[str, str]]) -> list[dict[str, Any]]:
    device = result["device"]
    if result["status"] != "measured":
        return [device_row(device, model, method, result["status"]) for model, method in methods]
    rows = []
    for name, m in result["models"].items():
        model, method = name.split(":", 1)
        wrong = m.get("wrong")
        check = m.get("results_check") or (f"wrong: {wrong}" if wrong else "as PyTorch")
        rows.append(device_row(device, model, method, logs.WRONG if wrong else "measured",
                         latency_median_ms=m["median_ms"], latency_iqr_ms=m["iqr_ms"],
                         n=m["n"], speedup_vs_dense=None if wrong else m["speedup_vs_dense"],
                         avg_power_w=m["avg_power_w"], idle_power_w=m["idle_power_w"],
                         energy_j_per_clip=m["energy_j_per_clip"], energy_status=m["status"],
                         max_abs_diff=m.get("max_abs_diff"),
                         clips_with_other_decisions=m.get("clips_with_other_decisions"),
                         results_check=check,
                         providers=",".join(m.get("providers") or []) or None,
                         source=f"{result.get('source')}: {result.get('log')}"))
    return rows


def write_summary(cfg: dict) -> Path:
    """Write ``Paths.devices_summary`` (+ .md) from the host bench and the device results."""
    from dance.paths import Paths

    paths = Paths(cfg)
    rows = host_rows(paths.bench_onnx, read_json(paths.onnx_export_check))
    methods = list(dict.fromkeys((r["model"], r["method"]) for r in rows))
    for device in DEVICES:
        rows += device_rows(read_json(paths.device_result(device)), methods)
    if paths.gpu_result.exists():    # written by the GPU check, only where a GPU ran it
        rows += device_rows(read_json(paths.gpu_result), methods)
    write_csv(paths.devices_summary, rows, COLUMNS)
    write_text(paths.devices_summary.with_suffix(".md"), markdown(rows))
    return paths.devices_summary


def markdown(rows: list[dict[str, Any]]) -> str:
    def f(v: Any, spec: str) -> str:
        return "—" if v is None else format(v, spec)

    header = ["device", "model", "method", "status", "latency ms (IQR)", "speed-up", "power W",
              "J/clip", "clips/J", "paper speed-up"]
    return markdown_table(header, ([
        r["device"], r["model"], r["method"], r["status"],
        f"{f(r['latency_median_ms'], '.2f')} ({f(r['latency_iqr_ms'], '.2f')})",
        f(r["speedup_vs_dense"], ".2f"), f(r["avg_power_w"], ".2f"),
        f(r["energy_j_per_clip"], ".4f"), f(r["energy_efficiency_clips_per_j"], ".1f"),
        f"{f(r['paper_speedup'], '.2f')}{' (paper-reported)' if r['paper_speedup'] else ''}",
    ] for r in rows))
