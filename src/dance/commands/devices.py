"""Commands: ONNX export, host ONNX Runtime, devices, devices.csv."""

from __future__ import annotations

import argparse
from pathlib import Path

from dance.commands.registry import command


@command("export-onnx", "dense and DANCE networks to ONNX + device bundle; ONNX Runtime "
         "checked against PyTorch on the test clips")
def _export_onnx(cfg: dict, args: argparse.Namespace) -> None:
    from dance.devices.export import export_bundle
    from dance.io import read_json
    from dance.paths import Paths

    manifest = export_bundle(cfg)
    for name, c in read_json(Paths(cfg).onnx_export_check)["models"].items():
        print(f"{name}: {c['file']} ({c['bytes'] / 1e6:.1f} MB), ONNX Runtime vs PyTorch on "
              f"{c['clips']} clips: max |diff| {c['max_abs_diff']:.2e} (logits up to "
              f"{c['logit_scale']:.2e}), same top-1 {c['same_top1']}, same decisions "
              f"{c['same_decisions']}")
    print(manifest)


@command("bench-onnx", "host ONNX Runtime latency of dense vs DANCE, interleaved, batch 1")
def _bench_onnx(cfg: dict, args: argparse.Namespace) -> None:
    from dance.devices.onnx_bench import bench_onnx

    out, rows = bench_onnx(cfg)
    for r in rows:
        speed = f"{r['speedup_vs_dense']:.2f}x" if r["speedup_vs_dense"] else "-"
        print(f"{r['model']} {r['method']}: {r['median_ms']:.2f} ms (IQR {r['iqr_ms']:.2f}), "
              f"speed-up {speed}; energy: {r['energy_status']}")
    print(out)


def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", required=True, choices=["jetson_nano", "snapdragon"])


@command("device", "measure on a device (ssh/adb), or ingest its logs, or record 'not "
         "measured'", _device_args)
def _device(cfg: dict, args: argparse.Namespace) -> None:
    from dance.devices.drivers import measure_device
    from dance.io import read_json

    out = measure_device(cfg, args.device)
    result = read_json(out)
    print(f"{args.device}: {result['status']}")
    for model, table in result.get("latency_tables", {}).items():
        print(f"  {model} latency table: {table}")
    print(out)


@command("devices-summary", "devices.csv: latency, speed-up, power, energy per device × "
         "model × method, with the paper's speed-ups beside")
def _devices_summary(cfg: dict, args: argparse.Namespace) -> None:
    from dance.devices.summary import write_summary

    print(write_summary(cfg))


def _gpu_result_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bench", type=Path, action="append", required=True,
                   help="a bench_aap.csv the GPU check timed on CUDA (repeat per model)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write the device result (default: results/devices/gpu/"
                        "result.json of this config)")


@command("gpu-result", "the GPU check's CUDA benches as a device result devices.csv ingests",
         _gpu_result_args)
def _gpu_result(cfg: dict, args: argparse.Namespace) -> None:
    from dance.devices.gpu import gpu_result
    from dance.io import write_json
    from dance.paths import Paths

    result = gpu_result(list(args.bench))
    out = args.out or Paths(cfg).gpu_result
    write_json(out, result)
    for name, m in result["models"].items():
        speed = f"{m['speedup_vs_dense']:.2f}x" if m["speedup_vs_dense"] else "-"
        energy = (f"{m['energy_j_per_clip']:.4f} J/clip" if m["energy_j_per_clip"] is not None
                  else m["status"])
        print(f"{name}: {m['median_ms']:.2f} ms, speed-up {speed}, {energy}")
    print(out)
