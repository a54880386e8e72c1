"""Commands: AAP: controllers, their evaluation and bench, the latency table, the summary."""

from __future__ import annotations

import argparse

from dance.commands.registry import bench_families, command, model_arg, model_variants_args


def _aap_args(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    p.add_argument("--variant", default="dance",
                   help="dance (AVA backbone) or an ablation: no_ava, frames, channels, features")
    p.add_argument("--point", type=int, required=True,
                   help="operating point K: the K-th entry of aap.points")


@command("train-aap", "train the AAP controller of one operating point (resumable)", _aap_args)
def _train_aap(cfg: dict, args: argparse.Namespace) -> None:
    from dance.train.aap import train_aap

    print(train_aap(cfg, args.model, args.variant, args.point))


@command("evaluate-aap", "test-split top-1, effective MACs, memory, energy of one AAP point",
         _aap_args)
def _evaluate_aap(cfg: dict, args: argparse.Namespace) -> None:
    from dance.aap.evaluate import evaluate_aap
    from dance.io import read_json

    out = evaluate_aap(cfg, args.model, args.variant, args.point)
    ev = read_json(out)
    corr = ev["difficulty_correlation"]
    print(f"{args.model} {args.variant}@{args.point}: top-1 {ev['top1']:.4f} "
          f"(unpruned {ev['top1_dense']:.4f}), MACs {ev['macs']['ratio_mean']:.3f} of dense "
          f"(p5 {ev['macs']['ratio_p5']:.3f}, p95 {ev['macs']['ratio_p95']:.3f}), memory "
          f"{ev['memory']['ratio']:.3f}, MACs~difficulty Spearman {corr['spearman']}")
    print(out)


@command("aap-val", "val-split top-1 and MACs of one AAP point (recipe choice; writes nothing)",
         _aap_args)
def _aap_val(cfg: dict, args: argparse.Namespace) -> None:
    from dance.aap.evaluate import validate_aap

    r = validate_aap(cfg, args.model, args.variant, args.point)
    print(f"{args.model} {args.variant}@{args.point} on {r['clips']} val clips: top-1 "
          f"{r['top1']:.4f} (unpruned {r['top1_dense']:.4f}, {100 * r['top1_delta']:+.2f} "
          f"points), MACs {r['macs_ratio']:.3f} of dense")


@command("bench-aap", "host latency of dense vs every AAP operating point, one interleaved run",
         model_variants_args)
def _bench_aap(cfg: dict, args: argparse.Namespace) -> None:
    from dance.aap.summary import FLOOR, bench_table
    from dance.measure.bench import format_table, run_bench

    bench_families()
    from dance.paths import Paths

    names = args.variants or ",".join(["dense", FLOOR, *_aap_variant_names(cfg)])
    out, rows = run_bench(cfg, args.model, "ava", names, out=Paths(cfg).aap_bench(args.model))
    print(f"{args.model}: batch 1, {rows[0]['threads']} threads, conv backend "
          f"{rows[0]['conv_backend']}, {rows[0]['cpu']}, load {rows[0]['load_average_1m']}")
    print(format_table(rows))
    print(bench_table(cfg, args.model, rows))
    print(out)


def _aap_variant_names(cfg: dict) -> list[str]:
    """Every trained point, and the decision-overhead probes of each DANCE point."""
    from dance.aap.bench import PROBES, variant_name
    from dance.plan import aap_pairs, aap_points

    names = [variant_name(v, k) for v, k in aap_pairs(cfg)]
    probes = [f"{variant_name('dance', k)}:{p}" for k in aap_points(cfg)["dance"]
              for p in PROBES]
    return names + probes


def _keep_grid_args(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    p.add_argument("--cases", default="0.5,1,1;1,0.5,1;0.5,0.5,1;1,0.25,1",
                   help="keep fractions f_FR,f_CH,f_FE separated by ';'")
    p.add_argument("--width", type=float, default=None, help="default: model.width")
    p.add_argument("--frames", type=int, default=None, help="default: dataset.frames")
    p.add_argument("--size", type=int, default=None, help="default: dataset.size")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=8)


@command("aap-keep-grid", "dev timing: dense vs pruned execution at fixed keep fractions "
         "(random init, forced masks)", _keep_grid_args)
def _aap_keep_grid(cfg: dict, args: argparse.Namespace) -> None:
    from dance.aap.timing import keep_grid

    cases = [tuple(float(v) for v in c.split(",")) for c in args.cases.split(";") if c]
    res = keep_grid(args.model, cases, width=args.width or cfg["model"]["width"],
                    frames=args.frames or cfg["dataset"]["frames"],
                    size=args.size or cfg["dataset"]["size"], threads=args.threads,
                    repeats=args.repeats, seed=cfg["seed"], frame_exec=cfg["aap"]["frame_exec"])
    print(f"{res['model']} width {res['width']} clip {res['clip']} threads {res['threads']} "
          f"({res['clock']}): dense {res['dense_median_ms']:.2f} ms, load "
          f"{res['environment']['load_average_1m']}")
    for r in res["rows"]:
        print(f"  {r['setting']}: MACs {r['macs_ratio']:.3f}, {r['median_ms']:.2f} ms, speed-up "
              f"{r['speedup']:.2f}x, ideal {r['ideal']:.2f}x, realised/ideal "
              f"{r['realised_over_ideal']:.2f}")


@command("latency-table", "per-layer latency of the pruned execution on this host at a grid of "
         "kept shares (the table a latency-aware controller trains against)", model_arg)
def _latency_table(cfg: dict, args: argparse.Namespace) -> None:
    from dance.aap.latency_table import overhead_summary, write_table

    out = write_table(cfg, args.model)
    print(overhead_summary(out))
    print(out)


@command("dance-summary", "one row per model × variant × operating point: dance_summary.csv "
         "and dance_difficulty_terms.csv")
def _dance_summary(cfg: dict, args: argparse.Namespace) -> None:
    from dance.aap.summary import write_summary
    from dance.paths import Paths

    print(write_summary(cfg))
    print(Paths(cfg).dance_difficulty_terms)
