"""`python -m dance gpu-result`: the GPU check's benches as a device result (issue 22.3).

The GPU check (``scripts/gpu_check.sh``) runs the workflow's own bench of dense vs the DANCE
operating points (``bench-aap``) with ``device: cuda``: the same interleaved timing, every
call synchronised, energy from the GPU's NVML power sensor (:mod:`dance.measure.nvml`).
This module turns those bench files into the format :mod:`dance.devices.summary` ingests for
an edge device (``{"device", "status", "source", "models": {"model:method": {...}}}``), so
that ``devices.csv`` shows the GPU beside the host and the edge devices. A bench that did not
run on CUDA is refused: a CPU number must never appear as a GPU one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from dance.errors import DeviceError

DEVICE = "gpu"
DIAGNOSTIC_VARIANTS = ("dense-floor",)     # bounds, not methods


def _num(value: str | None) -> float | None:
    return float(value) if value not in ("", None) else None


def model_rows(bench_csv: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """({"model:method": row}, the timing environment) of one CUDA bench CSV (+ its JSON)."""
    detail = json.loads(bench_csv.with_suffix(".json").read_text())
    env = detail["timing"]["environment"]
    if not str(env.get("device", "cpu")).startswith("cuda"):
        raise DeviceError(f"{bench_csv} was timed on {env.get('device', 'cpu')}, not on a CUDA "
                          f"GPU; rerun the GPU check (scripts/gpu_check.sh) on a GPU machine")
    energy = detail.get("energy", {})
    rows: dict[str, dict[str, Any]] = {}
    with open(bench_csv, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["variant"] in DIAGNOSTIC_VARIANTS:
                continue
            rows[f"{r['model']}:{r['variant']}"] = {
                "median_ms": _num(r["median_ms"]), "iqr_ms": _num(r["iqr_ms"]),
                "n": int(r["n"]), "speedup_vs_dense": _num(r["speedup_vs_dense"]),
                "avg_power_w": energy.get(r["variant"], {}).get("avg_power_w"),
                "idle_power_w": None,
                "energy_j_per_clip": _num(r["energy_j_per_clip"]),
                "status": r["energy_status"],
                "results_check": "not checked: the host's PyTorch code, run on CUDA",
                "providers": [f"PyTorch CUDA ({env.get('gpu')})"],
            }
    return rows, env


def gpu_result(bench_csvs: list[Path], check_log: str | None = None) -> dict[str, Any]:
    """The device result of the GPU check's bench CSVs (one per model)."""
    if not bench_csvs:
        raise DeviceError("no bench file given: pass the GPU check's bench_aap.csv files")
    models: dict[str, dict[str, Any]] = {}
    envs = []
    for path in bench_csvs:
        if not path.exists():
            raise DeviceError(f"{path} does not exist: run the GPU check's benches first")
        rows, env = model_rows(path)
        models.update(rows)
        envs.append(env)
    gpus = sorted({str(e.get("gpu")) for e in envs})
    return {"device": DEVICE, "status": "measured",
            "source": (f"GPU check on {', '.join(gpus)}, PyTorch {envs[0]['torch']}, "
                       f"batch 1, NVML energy"),
            "log": check_log or ", ".join(str(p) for p in bench_csvs),
            "gpu": gpus, "models": models}
