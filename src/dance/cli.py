"""`python -m dance <command>`: every workflow step, runnable on its own.

Each command takes `--config FILE` (layered over workflow/config/default.yaml, as the
workflow's --configfile is) and any number of `--set key.sub=value` overrides, validates the result against the schema, and calls one
function of the package. Errors caused by input print one line naming the key or file and
exit with status 2; nothing is left half-written (all outputs are atomic).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from dance import config as config_mod
from dance.errors import ConfigError, DanceError

Command = Callable[[dict, argparse.Namespace], object]
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str, help: str, args: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    def register(fn: Command) -> Command:
        _COMMANDS[name] = (help, args, fn)
        return fn
    return register


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model name from the registry (c3d, r3d18)")


def _model_stage_args(p: argparse.ArgumentParser) -> None:
    _model_arg(p)
    p.add_argument("--stage", default="baseline", help="training stage whose checkpoint to use")


@command("validate-config", "validate a config and print it with every default filled in")
def _validate(cfg: dict, args: argparse.Namespace) -> None:
    import yaml

    print(yaml.safe_dump(cfg, sort_keys=False), end="")


@command("prepare-data", "generate or decode the configured data set into cached shards")
def _prepare(cfg: dict, args: argparse.Namespace) -> None:
    from dance.data import prepare

    print(prepare(cfg, progress=cfg["train"]["progress"]))


@command("plot-samples", "figure: a grid of sample frames per class of the data set")
def _plot_samples(cfg: dict, args: argparse.Namespace) -> None:
    from dance.data.samples_figure import plot_samples
    from dance.paths import Paths

    paths = Paths(cfg)
    plot_samples(paths.data_dir, paths.figure("dataset_samples", "png"),
                 paths.figure("dataset_samples", "pdf"))


@command("train-baseline", "train a dense backbone from scratch (resumable)", _model_arg)
def _train_baseline(cfg: dict, args: argparse.Namespace) -> None:
    from dance.train.baseline import train_baseline

    print(train_baseline(cfg, args.model))


@command("train-ava", "AVA fine-tuning of a trained baseline (resumable)", _model_arg)
def _train_ava(cfg: dict, args: argparse.Namespace) -> None:
    from dance.train.ava import train_ava

    print(train_ava(cfg, args.model))


@command("ava-stats", "frame/channel/feature sparsity of the baseline vs AVA on the test split",
         _model_arg)
def _ava_stats(cfg: dict, args: argparse.Namespace) -> None:
    from dance.ava.stats import sparsity_stats

    print(sparsity_stats(cfg, args.model))


@command("evaluate", "test-split metrics of a trained stage", _model_stage_args)
def _evaluate(cfg: dict, args: argparse.Namespace) -> None:
    from dance.evaluate.run import evaluate_stage

    print(evaluate_stage(cfg, args.model, args.stage))


def _bench_args(p: argparse.ArgumentParser) -> None:
    _model_stage_args(p)
    p.add_argument("--variants", default=None,
                   help="comma list of registered variants (dance.measure.variants); "
                        "default dense,dense-native,dense-channels-last; dense is always timed")


@command("bench", "host latency (and RAPL energy) of network variants, timed interleaved",
         _bench_args)
def _bench(cfg: dict, args: argparse.Namespace) -> None:
    from dance.io import read_json
    from dance.measure.bench import format_table, run_bench

    out, rows = run_bench(cfg, args.model, args.stage, args.variants)
    slow = read_json(out.with_suffix(".json"))["slow_path_check"]
    print(f"{args.model} {args.stage}: batch 1, {rows[0]['threads']} threads, "
          f"conv backend {rows[0]['conv_backend']}, {rows[0]['cpu']}")
    print(format_table(rows))
    print(f"slow path (native kernels): batch 1 uses {slow['batch1_audit']}, batch 2 "
          f"{slow['batch2_audit']}; {slow['batch1_native_ms']:.2f} ms at batch 1 vs "
          f"{slow['batch2_native_ms_per_clip']:.2f} ms per clip at batch 2; "
          f"oneDNN forced at batch 1: {slow['batch1_mkldnn_ms']:.2f} ms")
    print(f"energy: {rows[0]['energy_status']}")
    print(out)


def _aap_args(p: argparse.ArgumentParser) -> None:
    _model_arg(p)
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


def _bench_aap_args(p: argparse.ArgumentParser) -> None:
    _model_arg(p)
    p.add_argument("--variants", default=None,
                   help="comma list (default: dense, dense-floor and every operating point the "
                        "config trains)")


@command("bench-aap", "host latency of dense vs every AAP operating point, one interleaved run",
         _bench_aap_args)
def _bench_aap(cfg: dict, args: argparse.Namespace) -> None:
    from dance.aap.summary import FLOOR, bench_table
    from dance.measure.bench import format_table, run_bench
    from dance.paths import Paths

    names = args.variants or ",".join(["dense", FLOOR, *_aap_variant_names(cfg)])
    out, rows = run_bench(cfg, args.model, "ava", names, out=Paths(cfg).aap_bench(args.model))
    print(f"{args.model}: batch 1, {rows[0]['threads']} threads, conv backend "
          f"{rows[0]['conv_backend']}, {rows[0]['cpu']}, load {rows[0]['load_average_1m']}")
    print(format_table(rows))
    print(bench_table(cfg, args.model, rows))
    print(out)


def _aap_variant_names(cfg: dict) -> list[str]:
    from dance.aap.bench import variant_name
    from dance.train.aap import trained_points

    return [variant_name(v, k) for v, points in trained_points(cfg).items() for k in points]


def _keep_grid_args(p: argparse.ArgumentParser) -> None:
    _model_arg(p)
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
         "kept shares (the table a latency-aware controller trains against)", _model_arg)
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
def _level_args(p: argparse.ArgumentParser) -> None:
    _model_arg(p)
    p.add_argument("--level", required=True, choices=["mild", "aggressive"],
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
         _model_arg)
def _evaluate_sota_dense(cfg: dict, args: argparse.Namespace) -> None:
    from dance.sota.evaluate import evaluate_dense

    _print_record(evaluate_dense(cfg, args.model))


@command("train-selector", "train the pruning-level selector head on the val split (resumable)",
         _model_arg)
def _train_selector(cfg: dict, args: argparse.Namespace) -> None:
    from dance.sota.selector import train_selector

    print(train_selector(cfg, args.model))


@command("evaluate-selector", "test-split records of every pruning-level-selection point",
         _model_arg)
def _evaluate_selector(cfg: dict, args: argparse.Namespace) -> None:
    from dance.sota.selector import evaluate_selector

    for path in evaluate_selector(cfg, args.model):
        _print_record(path)


@command("bench-sota", "host latency of dense vs the L1-pruned nets and selector points, "
         "one interleaved run", _bench_aap_args)
def _bench_sota(cfg: dict, args: argparse.Namespace) -> None:
    from dance.measure.bench import format_table, run_bench
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
    _model_arg(p)
    p.add_argument("--method", required=True, choices=("gating", "frame_skip"),
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
    print(f"{args.device}: {read_json(out)['status']}")
    print(out)


@command("devices-summary", "devices.csv: latency, speed-up, power, energy per device × "
         "model × method, with the paper's speed-ups beside")
def _devices_summary(cfg: dict, args: argparse.Namespace) -> None:
    from dance.devices.summary import write_summary

    print(write_summary(cfg))
# --- paper tables, figures, claims, provenance (dance.report) ----------------------------
def _artifact_arg(kind: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        from dance.report.registry import ARTIFACTS

        ids = [a.id for a in ARTIFACTS.values() if a.kind == kind]
        p.add_argument("ids", nargs="+", metavar="ID",
                       help=f"{kind} id(s): {', '.join(ids)}, or 'all'")
    return add


def _build_artifacts(cfg: dict, ids: list[str], kind: str) -> None:
    from dance.report.registry import ARTIFACTS, build, get

    if [i.lower() for i in ids] == ["all"]:
        ids = [a.id for a in ARTIFACTS.values() if a.kind == kind]
    for artifact_id in ids:
        if get(artifact_id).kind != kind:
            from dance.errors import DanceError

            raise DanceError(f"{artifact_id} is not a {kind}")
        for path in build(cfg, artifact_id):
            print(path)


@command("table", "paper table(s) T1–T4 as CSV, Markdown and LaTeX from the result files",
         _artifact_arg("table"))
def _table(cfg: dict, args: argparse.Namespace) -> None:
    _build_artifacts(cfg, args.ids, "table")


@command("figure", "paper figure(s) F1–F10 as PNG and PDF (+ CSV of the data) from the result "
         "files", _artifact_arg("figure"))
def _figure(cfg: dict, args: argparse.Namespace) -> None:
    _build_artifacts(cfg, args.ids, "figure")


@command("claims", "check every claim of the paper against the results: claims.csv")
def _claims(cfg: dict, args: argparse.Namespace) -> None:
    from dance.report.claims import format_claims, write_claims

    path, rows = write_claims(cfg)
    print(format_claims(rows))
    print(path)


@command("provenance", "record code commit, config fingerprint, packages, CPU: provenance.json")
def _provenance(cfg: dict, args: argparse.Namespace) -> None:
    from dance.report.provenance import write_provenance

    print(write_provenance(cfg))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dance", description=__doc__.split("\n")[0])
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_args, _) in _COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", type=Path, default=None,
                         help="config YAML/JSON, merged over workflow/config/default.yaml")
        sub.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="override a config key, e.g. train.epochs=2")
        add_args(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides: dict = {}
        for text in args.overrides:
            overrides = config_mod.merge(overrides, config_mod.parse_override(text))
        cfg = config_mod.load(args.config, overrides)
        if isinstance(getattr(args, "model", None), str):
            from dance.models.registry import MODELS

            if args.model not in MODELS:
                raise ConfigError(f"unknown model {args.model!r} (--model); allowed: "
                                  f"{', '.join(sorted(MODELS))}")
        if args.command != "validate-config":
            from dance.io import check_output_folder

            for key in ("results_dir", "figures_dir", "work_dir"):
                check_output_folder(cfg[key], key)
        _COMMANDS[args.command][2](cfg, args)
    except DanceError as exc:
        print(f"dance {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dance {args.command}: interrupted; finished outputs are kept, re-run to resume",
              file=sys.stderr)
        return 130
    return 0
