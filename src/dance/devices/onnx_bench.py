"""`python -m dance bench-onnx`: the exported models under ONNX Runtime on this host.

Dense and every DANCE point of a model are timed side by side in one interleaved run at
batch 1 on the bundle's clips (:func:`dance.measure.latency.time_variants`, the host bench's
timing), with ONNX Runtime's CPU provider and ``bench.threads`` intra-op threads. Host energy
comes from RAPL where readable (:func:`dance.measure.bench.measure_energy`), else it is not
measured and the reason is written. These rows enter ``devices.csv`` as device ``host_cpu``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dance.errors import DanceError
from dance.io import read_json, write_csv, write_json

COLUMNS = ["device", "model", "method", "median_ms", "p25_ms", "p75_ms", "iqr_ms", "n",
           "speedup_vs_dense", "energy_j_per_clip", "energy_status", "threads", "cpu",
           "onnxruntime", "providers", "load_average_1m"]


def load_bundle(bundle: Path) -> tuple[dict, np.ndarray]:
    """(manifest, clips) of an exported bundle; DanceError naming the file when absent."""
    path = Path(bundle) / "manifest.json"
    if not path.exists():
        raise DanceError(f"no device bundle at {path}: run `python -m dance export-onnx` first")
    manifest = read_json(path)
    return manifest, np.load(Path(bundle) / manifest["clips"])


def _runner(sess):
    def run(x: torch.Tensor):
        return sess.run(None, {"clip": x.numpy()})
    return run


def bench_onnx(cfg: dict, meter=None) -> tuple[Path, list[dict[str, Any]]]:
    """Time every bundle model on the host; write ``Paths.bench_onnx`` (+ .json)."""
    import onnxruntime as ort

    from dance.devices.export import session
    from dance.measure import latency
    from dance.measure.bench import measure_energy
    from dance.paths import Paths

    paths = Paths(cfg)
    manifest, clips_np = load_bundle(paths.device_bundle)
    bench = cfg["bench"]
    threads = bench["threads"] or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    clips = [torch.from_numpy(clips_np[i:i + 1]) for i in range(len(clips_np))]
    rows, detail = [], {}
    for model_name in dict.fromkeys(m["model"] for m in manifest["models"]):
        fns = {}
        for m in (m for m in manifest["models"] if m["model"] == model_name):
            sess = session(paths.device_bundle / m["file"], threads)
            fns[m["method"]] = _runner(sess)
        if "dense" not in fns:
            raise DanceError(f"bundle {paths.device_bundle} has no dense model of {model_name}")
        timing = latency.time_variants(fns, clips, bench["warmup"], bench["repeats"],
                                       reference="dense", audit=False)
        energy = measure_energy(fns, clips, bench["energy_window_s"], meter)
        env = timing["environment"]
        for method in timing["variants"]:
            s = timing["summary"][method]
            rows.append({
                "device": "host_cpu", "model": model_name, "method": method,
                "median_ms": s["median"] * 1e3, "p25_ms": s["p25"] * 1e3,
                "p75_ms": s["p75"] * 1e3, "iqr_ms": s["iqr"] * 1e3, "n": s["n"],
                "speedup_vs_dense": timing["speedup"][method],
                "energy_j_per_clip": energy[method]["j_per_clip"],
                "energy_status": energy[method]["status"], "threads": threads,
                "cpu": env["cpu"], "onnxruntime": ort.__version__,
                "providers": "CPUExecutionProvider",
                "load_average_1m": env["load_average_1m"]})
        detail[model_name] = {"timing": timing, "energy": energy}
    out = paths.bench_onnx
    write_csv(out, rows, COLUMNS)
    write_json(out.with_suffix(".json"), {"bundle": manifest["id"], "config": bench,
                                          "models": detail})
    return out, rows
