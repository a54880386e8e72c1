"""The claims check: every claim of the paper's abstract beside what this run measured.

``{results_dir}/claims.csv`` has one row per claim (per model where it differs, per
energy preset for the energy claim): ``claim_id``, the paper's value, the measured value
(a plain number, empty when not measured), its unit, the device, the ``source`` of the
measured value (``measured`` in this run, ``model`` = analytic estimate, ``paper`` = only
the paper's number exists), the rule and tolerance applied, and the verdict:

* ``reproduced`` / ``not reproduced`` — the measured value passes / fails the rule;
* ``not measured`` — nothing was measured (device not attached, stage not run); the
  reason is in ``note``; nothing is estimated in its place;
* ``no paper value`` — this artifact's own measurements the paper has no number for
  (``speedup_host``, ``energy_efficiency_vs_dense``);
* ``not comparable`` — the state-of-the-art claim when no compared method reaches the
  accuracy floor: a ratio against dense is not a ratio against the state of the art, so it
  gets its own row (``energy_efficiency_vs_dense``) and this one names the nearest method.

Rules (tolerances: config section ``claims``):

* speed-ups (Jetson Nano 1.37×, Snapdragon 8 Gen 1 2.22×, from ``devices.csv``):
  measured ≥ paper × (1 − ``speedup_tolerance``);
* energy efficiency vs the state of the art ("up to 1.47×", from
  ``comparison_matched.csv``, energy model): ratio to the best *compared* method (never
  dense) ≥ 1.47 × (1 − ``efficiency_tolerance``); the ratio to dense is reported beside;
* accuracy impact ("negligible to zero"): DANCE's top-1 minus the dense baseline's, in
  points, ≥ −``accuracy_tolerance``;
* MAC / memory-access savings (no number in the paper): saved fraction of dense ≥
  ``min_savings``, at a point whose accuracy is within tolerance;
* AVA raises activation variance: mean over layers and dimensions of (normalised variance
  after AVA / before) ≥ ``min_variance_gain``.

Every DANCE number is taken at the reported operating point
(:func:`dance.report.data.select_point`: fewest MACs within ``accuracy_tolerance`` points
of dense).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dance.io import write_csv
from dance.measure import accuracy
from dance.paths import Paths
from dance.report import data

PAPER_SOURCE = "DANCE abstract, arXiv 2603.17275 (2026)"
COLUMNS = ["claim_id", "model", "claim", "paper_value", "measured_value", "unit", "device",
           "source", "rule", "tolerance", "verdict", "operating_point", "evidence", "note"]
VERDICTS = ("reproduced", "not reproduced", "not measured", "no paper value",
            "not comparable")
DEVICES = {"speedup_jetson_nano": ("jetson", 1.37, "NVIDIA Jetson Nano (GPU)"),
           "speedup_snapdragon": ("snapdragon", 2.22, "Qualcomm Snapdragon 8 Gen 1")}
PAPER_EFFICIENCY = 1.47


def _row(claim_id: str, model: str, claim: str, paper: float | None, measured: float | None,
         unit: str, device: str, source: str, rule: str, tolerance: float | None,
         passed: bool | None, point: Any = None, evidence: Path | str = "",
         note: str = "", verdict: str | None = None) -> dict[str, Any]:
    if verdict is not None:                      # decided by the caller (not comparable)
        measured = None
    elif measured is None or (isinstance(measured, float) and np.isnan(measured)):
        measured = None
        if passed is False:          # measured, and it fails without a value to show
            verdict = "not reproduced"
        else:
            verdict = "not measured"
            source = "paper" if paper is not None else source
    elif passed is None:
        verdict = "no paper value"
    else:
        verdict = "reproduced" if passed else "not reproduced"
    return {"claim_id": claim_id, "model": model, "claim": claim, "paper_value": paper,
            "measured_value": None if measured is None else float(measured), "unit": unit,
            "device": device, "source": source, "rule": rule, "tolerance": tolerance,
            "verdict": verdict, "operating_point": point, "evidence": str(evidence),
            "note": note}


def _device_claims(claims: dict, models: list[str], paths: Paths) -> list[dict]:
    tol = claims["speedup_tolerance"]
    devices = data.optional_csv(paths.devices_summary, data.DEVICE_COLUMNS)
    _, picks = data.reported_points(paths.dance_summary, models, claims["accuracy_tolerance"])
    rows = []
    for claim_id, (key, paper, label) in DEVICES.items():
        rule = f"measured ≥ {paper} × (1 − {tol:g}) = {paper * (1 - tol):.3f}"
        for model in models:
            common = {"claim_id": claim_id, "model": model,
                      "claim": f"{paper}× speed-up on the {label}", "paper": paper,
                      "unit": "× (latency dense / DANCE)", "device": label, "rule": rule,
                      "tolerance": tol}
            if devices is None:
                rows.append(_row(**common, measured=None, source="paper", passed=None,
                                 evidence=paths.devices_summary,
                                 note="devices.csv not produced (device stage not run)"))
                continue
            # the reported point's row (the bundle exports dance@K), or a plain "dance" row
            pick = picks.get(model)
            method = f"dance@{int(pick['operating_point'])}" if pick is not None else "dance"
            hit = devices[devices["device"].str.lower().str.contains(key)
                          & (devices["model"] == model)
                          & devices["method"].str.lower().isin({method, "dance"})]
            if hit.empty:
                rows.append(_row(**common, measured=None, source="paper", passed=None,
                                 evidence=paths.devices_summary,
                                 note=f"no row of the reported point ({method}) for {label}"))
                continue
            r = hit.iloc[0]
            status = str(r["status"])
            measured = (data.nan_to_none(r["speedup_vs_dense"])
                        if status.lower().startswith("measured") else None)
            wrong = "wrong results" in status.lower()   # measured, but not what PyTorch computes
            rows.append(_row(**common, measured=measured, source="measured",
                             passed=(False if wrong else None) if measured is None
                             else measured >= paper * (1 - tol),
                             evidence=paths.devices_summary,
                             note="" if measured is not None else f"status: {status}"))
    return rows


def _efficiency_claims(claims: dict, models: list[str], paths: Paths) -> list[dict]:
    tol = claims["efficiency_tolerance"]
    paper = PAPER_EFFICIENCY
    common = {"claim_id": "energy_efficiency_vs_sota",
              "claim": f"up to {paper}× higher energy efficiency than the state of the art",
              "paper": paper, "unit": "× (energy best other / DANCE, matched accuracy)",
              "rule": f"measured ≥ {paper} × (1 − {tol:g}) = {paper * (1 - tol):.3f}",
              "tolerance": tol}
    matched = data.optional_csv(paths.comparison_matched, data.MATCHED_COLUMNS)
    if matched is None:
        return [_row(**common, model=m, measured=None, device="energy model", source="paper",
                     passed=None, evidence=paths.comparison_matched,
                     note="comparison_matched.csv not produced (comparison stage not run)")
                for m in models]
    rows = []
    for _, r in matched.iterrows():
        ratio = data.nan_to_none(r["efficiency_ratio"])
        dance_point = data.nan_to_none(r["dance_point"])
        note = data.nan_to_none(r["note"]) or ""
        device = f"energy model {r['preset']}"
        if ratio is not None:
            rows.append(_row(**common, model=r["model"], measured=ratio, device=device,
                             source="model", passed=ratio >= paper * (1 - tol),
                             point=dance_point, evidence=paths.comparison_matched,
                             note=f"vs {r['best_other_method']} @ {r['best_other_point']}; "
                                  f"{note}".rstrip("; ")))
        elif dance_point is None:      # no DANCE point reached the accuracy floor: it fails
            rows.append(_row(**common, model=r["model"], measured=None, device=device,
                             source="model", passed=False, evidence=paths.comparison_matched,
                             note=note))
        else:                          # no compared method did: nothing to compare with
            nearest = data.nan_to_none(r["nearest_compared"]) or "none"
            rows.append(_row(**common, model=r["model"], measured=None, device=device,
                             source="model", passed=None, point=dance_point,
                             evidence=paths.comparison_matched, verdict="not comparable",
                             note=f"no compared method within the accuracy tolerance "
                                  f"(nearest: {nearest}); {note}"))
        vs_dense = data.nan_to_none(r["efficiency_vs_dense"])
        rows.append(_row(
            "energy_efficiency_vs_dense", r["model"],
            "energy efficiency of DANCE against the dense network (this artifact's own)",
            None, vs_dense, "× (energy dense / DANCE, matched accuracy)", device, "model",
            "none (the paper compares with the state of the art, not with dense)", None,
            None, dance_point, paths.comparison_matched,
            "" if vs_dense is not None else "no DANCE point within the accuracy tolerance"))
    return rows


def _dance_claims(claims: dict, models: list[str], paths: Paths) -> list[dict]:
    _, picks = data.reported_points(paths.dance_summary, models, claims["accuracy_tolerance"])
    rows = []
    for model in models:
        pick = picks.get(model)
        bench = paths.aap_bench(model)
        if pick is None:
            for claim_id in ("accuracy_impact", "mac_savings", "memory_savings",
                             "speedup_host"):
                rows.append(_row(claim_id, model, claim_id, None, None, "", "", "measured",
                                 "", None, None, evidence=paths.dance_summary,
                                 note="no DANCE operating point in the summary"))
            continue
        point, within = int(pick["operating_point"]), bool(pick["within_tolerance"])
        where = (f"reported point {point} (fewest MACs within {claims['accuracy_tolerance']:g} pt "
                 f"of dense)" if within else
                 f"point {point}: no DANCE point is within {claims['accuracy_tolerance']:g} pt of "
                 f"dense; the most accurate is reported")
        delta = pick["accuracy_delta_points"]
        counts = data.accuracy_counts(pick)
        rows.append(_row(
            "accuracy_impact", model, 'accuracy impact "negligible to zero"', 0.0, delta,
            "top-1 points (DANCE − dense)", "any (test split)", "measured",
            f"measured ≥ −{claims['accuracy_tolerance']:g}", claims["accuracy_tolerance"],
            data.within_points(pick, claims["accuracy_tolerance"]), point, paths.dance_summary,
            where if counts is None else
            f"{where}; {accuracy.describe_delta(*counts)}: the verdict is taken on the counts"))
        for claim_id, col, what, source in (
                ("mac_savings", "macs_ratio", "MACs", "measured"),
                ("memory_savings", "memory_ratio", "memory accesses", "model")):
            saved = 1.0 - float(pick[col])
            note = (f"{where}; {'exact count of the per-clip decisions' if source == 'measured' else 'ideal-reuse access model'}"  # noqa: E501
                    + ("" if within else "; not reproduced: accuracy outside tolerance"))
            rows.append(_row(
                claim_id, model, f"savings in {what}", None, saved,
                f"fraction of dense {what} saved", "any (test split)", source,
                f"measured ≥ {claims['min_savings']:g} at a point within accuracy tolerance",
                claims["min_savings"], within and saved >= claims["min_savings"], point,
                paths.dance_summary, note))
        speedup = data.nan_to_none(pick.get("speedup_measured"))
        amdahl = data.nan_to_none(pick.get("speedup_amdahl"))
        bound = ("" if amdahl is None else
                 f"; {amdahl:.2f}× if the pruned convs' time fell with their MACs and the "
                 f"rest stayed (dense-floor, Amdahl)")
        rows.append(_row(
            "speedup_host", model, "speed-up on this host's CPU (this artifact's own)", None,
            speedup, "× (latency dense / DANCE)", _host_label(bench, pick), "measured",
            "none (the paper reports no host CPU number)", None, None, point, bench,
            f"{where}; batch 1, timed interleaved with dense{bound}"))
    return rows


def _host_label(bench: Path, pick: dict) -> str:
    threads = data.nan_to_none(pick.get("threads"))
    cpu = ""
    if bench.exists():
        frame = pd.read_csv(bench)
        if "cpu" in frame and len(frame):
            cpu = str(frame["cpu"].iloc[0])
    label = f"host CPU{': ' + cpu if cpu else ''}"
    return label + (f" ({int(threads)} threads)" if threads is not None else "")


def _variance_claims(claims: dict, models: list[str], paths: Paths) -> list[dict]:
    gain_min = claims["min_variance_gain"]
    rows = []
    for model in models:
        path = paths.ava_sparsity(model)
        sp = data.csv(path, "python -m dance ava-stats")
        wide = sp.pivot_table(index=["layer", "dim"], columns="stage", values="norm_variance")
        gain = None
        note = "mean over layers and frame/channel/feature dims of variance(AVA)/variance(baseline)"
        if {"baseline", "ava"} <= set(wide.columns):
            ratios = (wide["ava"] / wide["baseline"]).replace([np.inf, -np.inf], np.nan).dropna()
            gain = float(ratios.mean()) if len(ratios) else None
            note += f" ({len(ratios)} layer×dim pairs)"
        rows.append(_row(
            "ava_variance_gain", model, "AVA raises the variance of activation magnitudes",
            None, gain, "× (normalised variance after / before AVA)", "any (test split)",
            "measured", f"measured ≥ {gain_min:g}", gain_min,
            None if gain is None else gain >= gain_min, None, path, note))
    return rows


def claims_rows(claims: dict, models: list[str], paths: Paths) -> list[dict[str, Any]]:
    """Every claim's row (module docstring) for `models`, with the `claims` section's
    tolerances, from the result files under `paths`."""
    rows = [row for part in (_device_claims, _efficiency_claims, _dance_claims,
                             _variance_claims) for row in part(claims, models, paths)]
    for r in rows:
        if r["evidence"]:
            r["evidence"] = paths.recorded(r["evidence"])
    return rows


def write_claims(cfg: dict) -> tuple[Path, list[dict[str, Any]]]:
    paths = Paths(cfg)
    rows = claims_rows(cfg["claims"], cfg["models"], paths)
    out = paths.claims
    write_csv(out, rows, COLUMNS)
    return out, rows


def format_claims(rows: list[dict[str, Any]]) -> str:
    """Console summary: one line per claim."""
    lines = []
    for r in rows:
        measured = "—" if r["measured_value"] is None else f"{r['measured_value']:.3g}"
        paper = "—" if r["paper_value"] is None else f"{r['paper_value']:g}"
        lines.append(f"{r['claim_id']:<27} {r['model']:<7} paper {paper:>5}  measured "
                     f"{measured:>7}  {r['verdict']:<15} {r['device']}")
    return "\n".join(lines)
