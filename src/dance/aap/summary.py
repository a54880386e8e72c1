"""`{results_dir}/metrics/dance_summary.csv`: one row per model × variant × operating point.

Accuracy, MACs, memory and energy (model estimate) come from the evaluation JSONs
(:mod:`dance.aap.evaluate`); the measured host speed-up from the model's ``bench_aap.csv``
(dense and every point timed interleaved in one run, :mod:`dance.aap.bench`). The ideal
speed-up is dense MACs / mean pruned MACs over the *same clips the bench timed* (the first
``bench.clips`` test clips, from the per-clip decisions), so realised/ideal compares like
with like; ``macs_ratio`` is the mean over the whole test split.

The ideal speed-up assumes time ∝ MACs for the whole network, but at batch 1 the layers no
pruning touches (first conv, pooling, the classifier's weight-bound matrix-vector products)
take a far larger share of the time than of the MACs. The bench therefore also times
``dense-floor``, the dense network with every prunable conv skipped
(:class:`dance.measure.variants.SkippedConv`), interleaved with the rest; from it come
``speedup_floor`` (dense / floor: the speed-up if the prunable convs took no time at all)
and ``speedup_amdahl`` (:func:`amdahl_speedup`: the speed-up if their time fell exactly with
their MACs), and ``realised_over_amdahl`` separates what the pruned execution loses from
what Amdahl's law forbids (docs/method.md, "AAP", the Amdahl floor; measured:
docs/experiments.md, "why the default size stays far from the ideal").

What deciding itself costs is measured by two probes per point timed in the same run
(``dance@K:tau0``, ``dance@K:decide``; :func:`decision_overhead`).

Beside it, ``dance_difficulty_terms.csv`` gives per point the Spearman correlation of the
per-clip MACs with the difficulty and with each nuisance term it sums (generated data).

Accuracy is also given as integer counts of the test split's ``clips``: ``correct``, the
reference's ``correct_reference`` (the dense baseline; the unpruned backbone when no baseline
evaluation exists) and their difference ``top1_delta_clips``, on which every accuracy
verdict is taken (:mod:`dance.measure.accuracy`).

``meets_targets`` checks the issue's numbers for a row: top-1 at most 1 point below the
reference (on the counts), effective MACs ≤ 40% of dense, measured speed-up ≥ 2.0 and
realised/ideal ≥ 0.7.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dance.io import markdown_table, read_json, write_csv, write_text
from dance.measure import accuracy
from dance.paths import Paths

REQUIRED_COLUMNS = ["model", "variant", "operating_point", "top1", "top1_delta", "macs_ratio",
                    "memory_ratio", "speedup_measured", "speedup_ideal"]
TARGETS = {"top1_drop": 0.01, "macs_ratio": 0.40, "speedup": 2.0, "realised_over_ideal": 0.7}
FLOOR = "dense-floor"     # bench variant: the dense network with every prunable conv skipped


def _bench_rows(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        return {row["variant"]: row for row in csv.DictReader(fh)}


def _bench_clip_ratio(decisions: Path, clips: int, dense_total: int, fixed: int) -> float | None:
    """Mean whole-network MAC ratio over the first `clips` test clips (the bench's)."""
    if not decisions.exists():
        return None
    per_clip: dict[int, int] = {}
    with open(decisions, newline="") as fh:
        for row in csv.DictReader(fh):
            c = int(row["clip"])
            if c < clips:
                per_clip[c] = per_clip.get(c, 0) + int(row["macs"])
    if not per_clip:
        return None
    return float(np.mean([(fixed + v) / dense_total for v in per_clip.values()]))


def amdahl_speedup(dense_ms: float, floor_ms: float, prunable_ratio: float) -> float:
    """Speed-up of a network whose prunable convs (dense time ``dense_ms − floor_ms``) run
    in `prunable_ratio` of their dense time while the rest (``floor_ms``) stays."""
    return dense_ms / (floor_ms + (dense_ms - floor_ms) * prunable_ratio)


def decision_overhead(bench: dict[str, dict[str, str]], name: str,
                      per_layer: list[dict[str, Any]]) -> dict[str, Any]:
    """What deciding costs at point `name`, from its bench probes (issue 20.3;
    :mod:`dance.aap.bench`): ``speedup_tau0`` (thresholds 0: the controller and the glue
    of every pruned conv, nothing decided), ``speedup_decide`` (every active decision runs
    and keeps all), ``pruned_convs`` (layers that run the pruned path),
    ``controller_overhead_ms`` (tau0 − dense) and ``decision_overhead_us_per_conv``
    ((decide − tau0) / pruned convs). None where the probes were not benched."""
    dense, tau0, decide = (bench.get(n) for n in ("dense", f"{name}:tau0", f"{name}:decide"))
    convs = sum(1 for layer in per_layer if layer.get("pruned"))
    out: dict[str, Any] = {"speedup_tau0": None, "speedup_decide": None, "pruned_convs": convs,
                           "controller_overhead_ms": None, "decision_overhead_us_per_conv": None}
    if dense and tau0:
        out["speedup_tau0"] = _float(tau0["speedup_vs_dense"])
        out["controller_overhead_ms"] = float(tau0["median_ms"]) - float(dense["median_ms"])
    if decide:
        out["speedup_decide"] = _float(decide["speedup_vs_dense"])
        if tau0 and convs:
            out["decision_overhead_us_per_conv"] = 1e3 * (
                float(decide["median_ms"]) - float(tau0["median_ms"])) / convs
    return out


def _float(value: Any) -> float | None:
    if value in (None, ""):
        return None
    return float(value)


def evaluations(paths: Paths, models: list[str], pairs: list[tuple[str, int]],
                ) -> Iterator[tuple[str, str, int, dict[str, Any]]]:
    """(model, variant, point, evaluation JSON) of every evaluated point: every (variant,
    point) of `pairs` (:func:`dance.plan.aap_pairs`) of each of `models`."""
    for model in models:
        for variant, point in pairs:
            path = paths.aap_eval(model, variant, point)
            if path.exists():
                yield model, variant, point, read_json(path)


def summary_rows(paths: Paths, models: list[str], pairs: list[tuple[str, int]],
                 energy_section: dict, bench_clips: int) -> list[dict[str, Any]]:
    """Rows for every evaluated (model, variant, point) of `models` × `pairs` (module
    docstring): the presets of the config's `energy_section`, the MAC ratio of the first
    `bench_clips` (``bench.clips``) test clips, the ones the bench times."""
    from dance.aap.bench import variant_name
    from dance.measure.profile import cost_tables

    tables = list(cost_tables(energy_section))
    rows = []
    benches = {model: _bench_rows(paths.aap_bench(model)) for model in models}
    for model, variant, point, ev in evaluations(paths, models, pairs):
        bench = benches[model]
        dense_row = bench.get("dense")
        dense_ms = _float(dense_row["median_ms"]) if dense_row else None
        floor_row = bench.get(FLOOR)
        floor_ms = _float(floor_row["median_ms"]) if floor_row else None
        b = bench.get(variant_name(variant, point))
        ratio_bench = _bench_clip_ratio(
            paths.aap_decisions(model, variant, point), bench_clips,
            ev["macs"]["dense"], ev["macs"]["dense_fixed"])
        measured = _float(b["speedup_vs_dense"]) if b else None
        ideal = 1.0 / ratio_bench if ratio_bench else None
        amdahl = None
        if ratio_bench and dense_ms and floor_ms:
            dense, fixed = ev["macs"]["dense"], ev["macs"]["dense_fixed"]
            amdahl = amdahl_speedup(dense_ms, floor_ms,
                                    (ratio_bench * dense - fixed) / (dense - fixed))
        delta_base = ev.get("top1_delta_baseline")
        clips, correct = int(ev["clips"]), accuracy.correct_of(ev)
        reference = (accuracy.correct_of(ev, "top1_baseline", "correct_baseline")
                     if ev.get("top1_baseline") is not None else
                     accuracy.correct_of(ev, "top1_dense", "correct_dense"))
        row = {
            "model": model, "variant": variant, "operating_point": point,
            "point_value": ev["point_value"], "budget": ev["budget"],
            "backbone": ev["backbone_stage"], "top1": ev["top1"],
            "top1_dense": ev["top1_dense"], "top1_delta": ev["top1_delta"],
            "top1_baseline": ev.get("top1_baseline"),
            "top1_delta_baseline": delta_base,
            "clips": clips, "correct": correct, "correct_reference": reference,
            "top1_delta_clips": correct - reference,
            "macs_ratio": ev["macs"]["ratio_mean"],
            "macs_ratio_p5": ev["macs"]["ratio_p5"],
            "macs_ratio_p95": ev["macs"]["ratio_p95"],
            "macs_mean": ev["macs"]["clip_mean"], "macs_dense": ev["macs"]["dense"],
            "memory_ratio": ev["memory"]["ratio"],
            **{f"energy_{t}_ratio_model": ev["energy"][t]["ratio"] for t in tables
               if t in ev["energy"]},
            "speedup_measured": measured,
            "speedup_ideal": ideal,
            "realised_over_ideal": (measured / ideal) if measured and ideal else None,
            "speedup_floor": dense_ms / floor_ms if dense_ms and floor_ms else None,
            "speedup_amdahl": amdahl,
            "realised_over_amdahl": measured / amdahl if measured and amdahl else None,
            "macs_ratio_bench_clips": ratio_bench,
            "median_ms": _float(b["median_ms"]) if b else None,
            "dense_median_ms": dense_ms,
            "dense_floor_ms": floor_ms,
            "speedup_status": b["speedup_status"] if b else "not benched",
            "threads": b["threads"] if b else None,
            "kept_frames": ev["kept"]["frames"], "kept_channels": ev["kept"]["channels"],
            "kept_features": ev["kept"]["features"],
            "spearman_difficulty": ev["difficulty_correlation"]["spearman"],
            "pearson_difficulty": ev["difficulty_correlation"]["pearson"],
            "controller_macs_share": ev["overhead"]["controller_macs_share"],
            "stats_ops_share": ev["overhead"]["stats_ops_share"],
            "pruning_ops_share": ev["overhead"]["pruning_ops_share"],
            "pruned_vs_masked_max_diff": ev["pruned_check"]["max_abs_logit_diff"],
            **decision_overhead(bench, variant_name(variant, point), ev["per_layer"]),
        }
        row["meets_targets"] = bool(
            accuracy.within_fraction(correct, reference, clips, TARGETS["top1_drop"])
            and row["macs_ratio"] <= TARGETS["macs_ratio"]
            and measured is not None and measured >= TARGETS["speedup"]
            and row["realised_over_ideal"] is not None
            and row["realised_over_ideal"] >= TARGETS["realised_over_ideal"])
        rows.append(row)
    return rows


def difficulty_term_rows(paths: Paths, models: list[str], pairs: list[tuple[str, int]],
                         ) -> list[dict[str, Any]]:
    """Per evaluated point: the Spearman correlation of per-clip MACs with the difficulty
    and with each nuisance term it sums (generated data only; heaviest term first), which
    shows what drives the sign of the overall coefficient."""
    from dance.data.synthetic import WEIGHTS

    rows = []
    for model, variant, point, ev in evaluations(paths, models, pairs):
        terms = ev.get("difficulty_terms") or {}
        if not terms:
            continue
        rows.append({"model": model, "variant": variant, "operating_point": point,
                     "point_value": ev["point_value"],
                     "clips": ev["difficulty_correlation"]["n"],
                     "spearman_difficulty": ev["difficulty_correlation"]["spearman"],
                     **{f"spearman_{term} ({WEIGHTS[term]:.2f})": terms[term]["spearman"]
                        for term in sorted(terms, key=lambda t: -WEIGHTS[t])}})
    return rows


def write_summary(cfg: dict) -> Path:
    """Write dance_summary.csv and dance_difficulty_terms.csv (each with a Markdown table
    beside it); return the summary's path."""
    from dance.plan import aap_pairs

    paths, models, pairs = Paths(cfg), cfg["models"], aap_pairs(cfg)
    rows = summary_rows(paths, models, pairs, cfg["energy"], cfg["bench"]["clips"])
    write_csv(paths.dance_summary, rows, None if rows else REQUIRED_COLUMNS)
    _write_markdown(paths.dance_summary.with_suffix(".md"), rows, [
        "model", "variant", "operating_point", "top1", "top1_delta_baseline", "macs_ratio",
        "memory_ratio", "speedup_measured", "speedup_ideal", "realised_over_ideal",
        "speedup_amdahl", "speedup_floor", "spearman_difficulty", "meets_targets"])
    terms = difficulty_term_rows(paths, models, pairs)
    write_csv(paths.dance_difficulty_terms, terms,
              None if terms else ["model", "variant", "operating_point", "spearman_difficulty"])
    _write_markdown(paths.dance_difficulty_terms.with_suffix(".md"), terms,
                    list(terms[0]) if terms else [])
    return paths.dance_summary


def _write_markdown(path: Path, rows: list[dict[str, Any]], cols: list[str]) -> None:
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))

    write_text(path, markdown_table(cols, ([cell(r.get(c)) for c in cols] for r in rows)))


def bench_table(cfg: dict, model: str, bench_rows: list[dict[str, Any]]) -> str:
    """Text table of one bench run's AAP rows beside their evaluation (the summary's
    columns, read back from the bench CSV just written): measured, ideal and Amdahl
    speed-up, realised/ideal, MAC ratio and top-1 change."""
    from dance.aap.bench import variant_name
    from dance.plan import aap_pairs

    benched = {r["variant"]: r["speedup_vs_dense"] for r in bench_rows
               if r["variant"].startswith("dance")}
    rows = {variant_name(r["variant"], r["operating_point"]): r
            for r in summary_rows(Paths(cfg), [model], aap_pairs(cfg), cfg["energy"],
                                  cfg["bench"]["clips"])}
    head = ("variant", "measured", "ideal", "Amdahl", "realised/ideal", "MACs", "top-1",
            "Δ vs dense")
    body = []
    for name, measured in benched.items():
        r = rows.get(name)
        if r is None:
            why = "(overhead probe)" if ":" in name else "(not evaluated)"
            body.append((name, _fmt(measured, "×"), "", "", "", "", "", why))
            continue
        delta = r["top1_delta_baseline"]
        delta = r["top1_delta"] if delta is None else delta
        body.append((name, _fmt(r["speedup_measured"], "×"), _fmt(r["speedup_ideal"], "×"),
                     _fmt(r["speedup_amdahl"], "×"), _fmt(r["realised_over_ideal"], ""),
                     _fmt(r["macs_ratio_bench_clips"], ""), _fmt(r["top1"], ""),
                     f"{100 * delta:+.1f} pt"))
    widths = [max(len(str(x[i])) for x in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
             for line in (head, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.2f}{unit}"
