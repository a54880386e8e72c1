"""Commands: the state-of-the-art comparison: L1, the selector, dynamic baselines, comparison.csv."""

from __future__ import annotations

import argparse
from pathlib import Path

from dance.commands.registry import bench_families, command, model_arg, model_variants_args
from dance.plan import DYNAMIC_RECORD, L1_LEVELS


def _level_args(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    p.add_argument("--level", required=True, choices=L1_LEVELS,
                   help="L1 pruning level (ratio from sota.l1.<level>)")


@command("train-l1", "prune the baseline by L1 filter norm and fine-tune it (resumable)",
         _level_args)
def _train_l1(cfg: dict, args: argparse.Namespace) -> None:
    from dance.sota.l1 import train_l1

    print(train_l1(cfg, args.model, args.level))


@command("evaluate-l1", "test-split record of a fine-tuned L1-pruned net", _level_args)
def _evaluate_l1(cfg: dict, args: argparse.Namespace) -> None:
    from dance.sota.evaluate import evaluate_l1

    _print_record(evaluate_l1(cfg, args.model, args.level))


@command("evaluate-sota-dense", "test-split record of the dense baseline (comparison reference)",
         model_arg)
def _evaluate_sota_dense(cfg: dict, args: argparse.Namespace) -> None:
    from dance.sota.evaluate import evaluate_dense

    _print_record(evaluate_dense(cfg, args.model))


@command("train-selector", "train the pruning-level selector head on the val split (resumable)",
         model_arg)
def _train_selector(cfg: dict, args: argparse.Namespace) -> None:
    from dance.sota.selector import train_selector

    print(train_selector(cfg, args.model))


@command("evaluate-selector", "test-split records of every pruning-level-selection point",
         model_arg)
def _evaluate_selector(cfg: dict, args: argparse.Namespace) -> None:
    from dance.sota.selector import evaluate_selector

    for path in evaluate_selector(cfg, args.model):
        _print_record(path)


@command("bench-sota", "host latency of dense vs the L1-pruned nets and selector points, "
         "one interleaved run", model_variants_args)
def _bench_sota(cfg: dict, args: argparse.Namespace) -> None:
    from dance.measure.bench import format_table, run_bench

    bench_families()
    from dance.paths import Paths
    from dance.sota.bench import bench_variants

    names = args.variants or ",".join(["dense", *bench_variants(cfg)])
    out, rows = run_bench(cfg, args.model, "baseline", names,
                          out=Paths(cfg).sota_bench(args.model))
    print(f"{args.model}: batch 1, {rows[0]['threads']} threads, {rows[0]['cpu']}")
    print(format_table(rows))
    print(out)


@command("comparison", "comparison.csv, comparison_matched.csv, comparison_literature.csv")
def _comparison(cfg: dict, args: argparse.Namespace) -> None:
    import csv

    from dance.paths import Paths
    from dance.sota.comparison import write_comparison

    out = write_comparison(cfg)
    with open(Paths(cfg).comparison_matched, newline="") as fh:
        for row in csv.DictReader(fh):
            print(f"{row['model']} {row['preset']}: {row['note']}")
    print(out)


def _print_record(path: Path) -> None:
    from dance.io import read_json

    r = read_json(path)
    lat = r["latency"]["speedup"]
    print(f"{r['model']} {r['method']}@{r['operating_point']}: top-1 {r['top1']:.4f} "
          f"(dense {r['top1_dense']:.4f}), MACs {r['macs']['ratio_mean']:.3f} of dense, "
          f"memory {r['memory']['ratio']:.3f}, speed-up "
          f"{'not measured' if lat is None else f'{lat:.2f}x'} -> {path}")
# --- dynamic SOTA baselines (dance.sota.dynamic) ---------------------------------------


def _dynamic_args(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    p.add_argument("--method", required=True, choices=tuple(DYNAMIC_RECORD),
                   help="gating = FBS-style channel gating; frame_skip = learned frame skipping")
    p.add_argument("--point", type=int, required=True,
                   help="operating point K: the K-th entry of sota.<method>.points")


@command("train-dynamic", "fine-tune one operating point of a dynamic baseline (FBS gating "
         "or frame skipping) from the baseline (resumable)", _dynamic_args)
def _train_dynamic(cfg: dict, args: argparse.Namespace) -> None:
    from dance.sota.dynamic import train

    print(train(cfg, args.model, args.method, args.point))


@command("evaluate-dynamic", "test-split record of one dynamic-baseline point: top-1, exact "
         "MACs, memory, energy, batch-1 latency vs dense", _dynamic_args)
def _evaluate_dynamic(cfg: dict, args: argparse.Namespace) -> None:
    from dance.io import read_json
    from dance.sota.dynamic import evaluate

    out = evaluate(cfg, args.model, args.method, args.point)
    rec = read_json(out)
    lat = rec["latency"]
    speed = f"{lat['speedup']:.2f}x" if lat["speedup"] else "n/a"
    print(f"{args.model} {rec['method']}@{args.point} ({rec['point_value']}): top-1 "
          f"{rec['top1']:.4f} (dense {rec['top1_dense']:.4f}), MACs "
          f"{rec['macs']['ratio_mean']:.3f} of dense (p5 {rec['macs']['ratio_p5']:.3f}, p95 "
          f"{rec['macs']['ratio_p95']:.3f}), memory {rec['memory']['ratio']:.3f}, measured "
          f"speed-up {speed}")
    print(out)
