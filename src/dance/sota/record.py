"""The operating-point evaluation record: one JSON per method × model × operating point.

Every compared method (static L1 pruning, pruning-level selection, FBS-style gating,
frame skipping, ...) evaluates itself on the test split and hands this module per-clip
numbers; everything the comparison reports is derived here, once, with the measurement
layer (:mod:`dance.measure.energy`, :mod:`dance.measure.memory`,
:mod:`dance.measure.macs`) and the AAP evaluation's conventions, so that every row of
``comparison.csv`` uses the same definitions as DANCE's own evaluation
(:mod:`dance.aap.evaluate`):

* MACs — exact count, one multiply-add = one MAC, taps that read padding are not MACs
  (:func:`dance.measure.macs.effective_conv_macs`); per clip, *including* the method's
  overhead (selector head, saliency predictors, policy network; element operations such
  as pooled statistics count one MAC each). The overhead is also reported on its own;
* memory accesses — ideal-reuse elements (:mod:`dance.measure.memory`), per clip;
* energy — :func:`dance.measure.energy.estimate` per clip for every configured cost table,
  averaged; always a model estimate;
* params — every network the method must store (e.g. both pruned nets and the selector);
* latency — only when the method removes work structurally and was timed interleaved with
  the dense network (:func:`dance.measure.latency.time_variants`); otherwise
  ``"not measured"`` with the reason.

The record's keys ``correct``/``correct_dense`` (integer counts, issue 23.4),
``top1``/``top1_dense``/``top1_delta``, ``macs.dense``/``clip_mean``/
``clip_p5``/``clip_p95``/``ratio_mean``, ``memory.dense``/``mean``/``ratio`` and
``energy.<preset>.dense``/``mean``/``ratio`` mean exactly what they mean in an AAP
evaluation JSON. Contract (keys, provenance vocabulary): docs/interfaces.md "SOTA records".
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from dance.errors import DanceError
from dance.io import read_json, write_json
from dance.measure import accuracy, energy, memory
from dance.measure.macs import dense_summary, exact_layer_macs
from dance.measure.stats import distribution
from dance.paths import Paths

SCHEMA = "dance.sota.record/1"
# Provenance vocabulary of every reported value (the comparison's source_* columns).
MEASURED = "measured"          # observed in this run (test-split top-1, timed latency)
COUNTED = "counted"            # exact operation count of this run's per-clip decisions
MODEL = "model"                # analytic model estimate (memory accesses, energy)
PAPER = "paper"                # quoted from a publication (literature table only)
NOT_MEASURED = "not measured"  # nothing structural to time, or not timed: value is empty
SOURCES = (MEASURED, COUNTED, MODEL, PAPER, NOT_MEASURED)
_POINT = re.compile(r"^[A-Za-z0-9_.+-]+$")


def check_point_name(point: str | int) -> str:
    """Operating points are file-name parts: letters, digits and ``_ . + -``."""
    name = str(point)
    if not _POINT.match(name):
        raise DanceError(f"operating point name {name!r} may only hold letters, digits and "
                         f"'_ . + -' (it becomes part of a file name)")
    return name


def static_costs(model: nn.Module, clip_shape: tuple[int, ...], bytes_per_element: int = 4,
                 ) -> dict[str, Any]:
    """Per-clip cost of running `model` densely on one clip of `clip_shape` (C,T,H,W):
    {macs (exact convention), macs_fvcore, accesses {weights_read, inputs_read,
    outputs_written}, params}.

    Works for any network of Conv3d/Linear layers (a pruned net, a selector head on a
    trunk, a gating predictor): shapes come from :func:`dance.measure.memory.dense_profile`,
    MACs from :func:`dance.measure.macs.exact_layer_macs` (the artifact's one convention).
    """
    shape = (1, *clip_shape[-4:])
    rows = memory.dense_profile(model, shape, bytes_per_element)
    modules = dict(model.named_modules())
    macs = sum(exact_layer_macs(modules[r["layer"]], r["in_shape"]) for r in rows)
    return {"macs": int(macs), "macs_fvcore": int(dense_summary(model, shape)["macs_total"]),
            "accesses": {k: int(sum(r[k] for r in rows)) for k in memory.FIELDS},
            "params": int(sum(p.numel() for p in model.parameters()))}


def dense_reference(cfg: dict, model_name: str, num_classes: int,
                    stage: str = "baseline") -> dict[str, Any]:
    """The dense network every method is compared with: its test top-1 (from its
    evaluation JSON, ``Paths.evaluation``) and its per-clip costs (:func:`static_costs`)."""
    from dance.models.trained import load_trained
    from dance.paths import Paths

    path = Paths(cfg).evaluation(model_name, stage)
    if not path.exists():
        raise DanceError(f"{path} is missing: evaluate the {stage} network first "
                         f"(python -m dance evaluate --model {model_name} --stage {stage})")
    net = load_trained(cfg, model_name, stage, num_classes)
    clip = (3, cfg["dataset"]["frames"], cfg["dataset"]["size"], cfg["dataset"]["size"])
    costs = static_costs(net, clip, cfg["energy"]["bytes_per_element"])
    evaluation = read_json(path)
    return {"top1": float(evaluation["top1"]), "correct": accuracy.correct_of(evaluation),
            "clips": int(evaluation["clips"]), "stage": stage, **costs}


def _per_clip(values: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{what} has shape {arr.shape}, expected ({n},) (one value per clip)")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{what} must be finite and >= 0")
    return arr


def build_record(*, method: str, model: str, operating_point: str | int,
                 correct: Any, macs: Any, accesses: Mapping[str, Any],
                 params: int | Mapping[str, int], dense: Mapping[str, Any],
                 tables: Mapping[str, Mapping[str, Any]], overhead_macs: Any = 0,
                 latency: Mapping[str, Any] | None = None, point_value: Any = None,
                 bytes_per_element: int = 4, notes: str = "",
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The record of one operating point from per-clip numbers (no file written).

    correct       [N] bool: the method's prediction is right on test clip i
    macs          [N] effective MACs of clip i, overhead included (exact convention)
    accesses      {weights_read, inputs_read, outputs_written} → [N] elements (or scalars)
    params        stored parameters: an int, or {network: count} (summed)
    dense         :func:`dense_reference` (top1, macs, accesses, params)
    tables        cost tables, ``dance.measure.profile.cost_tables(cfg["energy"])``
    overhead_macs [N] (or scalar) part of `macs` spent on deciding, not on the backbone
    latency       None (→ not measured) or {median_ms, dense_median_ms, speedup, threads,
                  bench} from an interleaved run; give {"reason": "..."} to say why not
    point_value   the swept knob (ratio, threshold, budget, ...)
    """
    ok = np.asarray(correct, dtype=bool)
    n = ok.shape[0]
    if ok.ndim != 1 or n == 0:
        raise ValueError("correct must be a non-empty 1-D array (one entry per test clip)")
    clip_macs = _per_clip(macs, n, "macs")
    over = _per_clip(overhead_macs, n, "overhead_macs")
    if (over > clip_macs + 1e-6).any():
        raise ValueError("overhead_macs exceeds macs: macs must include the overhead")
    missing = [k for k in memory.FIELDS if k not in accesses]
    if missing:
        raise ValueError(f"accesses lacks {', '.join(missing)}")
    acc = {k: _per_clip(accesses[k], n, f"accesses[{k!r}]") for k in memory.FIELDS}
    acc_total = sum(acc.values())
    dense_acc_total = float(sum(dense["accesses"][k] for k in memory.FIELDS))
    networks = dict(params) if isinstance(params, Mapping) else {"net": int(params)}
    correct_n = int(ok.sum())
    correct_dense = accuracy.correct_of({"clips": n, **dense})   # same test split
    dense_macs = float(dense["macs"])
    energy_out = {name: energy.per_clip_summary(clip_macs, acc, dense_macs, dense["accesses"],
                                                table) for name, table in tables.items()}
    lat = _latency(latency)
    return {
        "schema": SCHEMA, "method": method, "model": model,
        "operating_point": check_point_name(operating_point), "point_value": point_value,
        "split": "test", "clips": int(n),
        "correct": correct_n, "correct_dense": correct_dense,
        "top1": accuracy.top1(correct_n, n), "top1_dense": float(dense["top1"]),
        "top1_delta": accuracy.top1(correct_n - correct_dense, n),
        "macs": {"dense": dense_macs,
                 **{f"clip_{k}": v for k, v in distribution(clip_macs).items()},
                 **{f"ratio_{k}": v for k, v in distribution(clip_macs / dense_macs).items()},
                 "overhead_mean": float(over.mean()),
                 "overhead_share": float(over.mean() / dense_macs),
                 "convention": "exact: taps reading padding are not MACs; overhead included"},
        "memory": {"dense": dense_acc_total, "mean": float(acc_total.mean()),
                   "ratio": float(acc_total.mean() / dense_acc_total),
                   "bytes_per_element": bytes_per_element,
                   **{f"{k}_mean": float(acc[k].mean()) for k in memory.FIELDS}},
        "energy": energy_out,
        "params": {"total": int(sum(networks.values())), "networks": networks,
                   "dense": int(dense["params"])},
        "latency": lat,
        "sources": {"top1": MEASURED, "macs": COUNTED, "memory": MODEL, "energy": MODEL,
                    "latency": MEASURED if lat["median_ms"] is not None else NOT_MEASURED},
        "notes": notes,
        **({"extra": dict(extra)} if extra else {}),
    }


def _latency(latency: Mapping[str, Any] | None) -> dict[str, Any]:
    empty = {"median_ms": None, "dense_median_ms": None, "speedup": None, "threads": None,
             "bench": None}
    if latency is None or latency.get("median_ms") is None:
        reason = (latency or {}).get("reason") or "not timed"
        return {**empty, "reason": reason}
    out = {**empty, **{k: latency.get(k) for k in empty}, "reason": None}
    if out["speedup"] is None and out["dense_median_ms"]:
        out["speedup"] = out["dense_median_ms"] / out["median_ms"]
    return out


def write_record(path: str | Path, **kwargs: Any) -> Path:
    """:func:`build_record` written atomically to `path` (usually
    ``Paths.sota_record(model, method, point)``); returns the path."""
    record = build_record(**kwargs)
    write_json(path, record)
    return Path(path)


def read_record(path: str | Path) -> dict[str, Any]:
    """A record, checked to be one (schema key) — the error names the file."""
    path = Path(path)
    if not path.exists():
        raise DanceError(f"{path} is missing (operating-point record)")
    rec = read_json(path)
    if rec.get("schema") != SCHEMA:
        raise DanceError(f"{path} is not a {SCHEMA} record (schema={rec.get('schema')!r})")
    return rec


def l1_variant(level: str) -> str:
    return f"l1@{level}"


def bench_latency(paths: Paths, model_name: str, variant: str) -> dict[str, Any]:
    """Latency entry of a record from ``Paths.sota_bench`` (or the reason it is absent)."""
    path = paths.sota_bench(model_name)
    name = paths.recorded(path)
    if not path.exists():
        return {"reason": f"not benched ({name} missing)"}
    with open(path, newline="") as fh:
        rows = {r["variant"]: r for r in csv.DictReader(fh)}
    row, dense = rows.get(variant), rows.get("dense")
    if row is None or dense is None:
        return {"reason": f"variant {variant!r} not in {name}"}
    speed = row["speedup_vs_dense"]
    if speed in (None, ""):
        return {"reason": f"{name}: {row['speedup_status']}"}
    return {"median_ms": float(row["median_ms"]), "dense_median_ms": float(dense["median_ms"]),
            "speedup": float(speed), "threads": int(row["threads"]), "bench": name}
