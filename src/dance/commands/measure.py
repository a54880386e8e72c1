"""Commands: the measurement steps: host bench of network variants, dense profile."""

from __future__ import annotations

import argparse

from dance.commands.registry import bench_families, command, model_stage_args


def _bench_args(p: argparse.ArgumentParser) -> None:
    model_stage_args(p)
    p.add_argument("--variants", default=None,
                   help="comma list of registered variants (dance.measure.variants); "
                        "default dense,dense-native,dense-channels-last; dense is always timed")


@command("bench", "host latency (and RAPL energy) of network variants, timed interleaved",
         _bench_args)
def _bench(cfg: dict, args: argparse.Namespace) -> None:
    from dance.io import read_json
    from dance.measure.bench import format_table, run_bench

    bench_families()

    out, rows = run_bench(cfg, args.model, args.stage, args.variants)
    slow = read_json(out.with_suffix(".json"))["slow_path_check"]
    print(f"{args.model} {args.stage}: batch 1, {rows[0]['threads']} threads, "
          f"conv backend {rows[0]['conv_backend']}, {rows[0]['cpu']}")
    print(format_table(rows))
    if "skipped" in slow:
        print(f"slow path check skipped ({slow['skipped']})")
    else:
        print(f"slow path (native kernels): batch 1 uses {slow['batch1_audit']}, batch 2 "
              f"{slow['batch2_audit']}; {slow['batch1_native_ms']:.2f} ms at batch 1 vs "
              f"{slow['batch2_native_ms_per_clip']:.2f} ms per clip at batch 2; "
              f"oneDNN forced at batch 1: {slow['batch1_mkldnn_ms']:.2f} ms")
    print(f"energy: {rows[0]['energy_status']}")
    print(out)


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=None,
                   help="model to profile (repeatable or comma list; default: config models)")


@command("profile", "dense per-layer MACs, memory accesses and energy model estimate",
         _profile_args)
def _profile(cfg: dict, args: argparse.Namespace) -> None:
    from dance.measure.profile import run_profile

    models = [m for text in args.model or [] for m in text.split(",") if m] or None
    for path in run_profile(cfg, models):
        print(path)


# state-of-the-art comparison (dance.sota) ------------------------------------------------
