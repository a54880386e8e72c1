"""Dense per-layer profile of every configured model: MACs, memory accesses, energy estimate.

One table the paper's cost columns come from, built only from :mod:`.macs`,
:mod:`.memory` and :mod:`.energy` (no new counting here): per executed leaf layer its MACs,
parameters, shapes, ideal-reuse accesses and the energy model estimate of every
configured cost table; per model the totals (= column sums of its rows) and the ops fvcore
left uncounted. Energy columns carry ``_model`` in their name: they are estimates, never
measurements. Layers without MACs or traffic under our conventions (BatchNorm folded,
ReLU/pooling fused, dropout) are listed with zeros so the table shows every layer.

MACs follow the artifact's one convention (issue 23.3, docs/measurement.md §2): ``macs`` is
the *exact* count — a conv's taps that read zero padding are not MACs — the same count the
pruned networks' effective MACs, T2, the comparison and the claims use, so a saving is
always a ratio of like to like. ``macs_fvcore`` is fvcore's count (padding taps included),
kept beside it, named, for comparison with papers that report fvcore/ptflops numbers; its
total is checked against fvcore's model total.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from dance.errors import ConfigError
from dance.measure import energy, macs, memory

ACCESS_KEYS = ("weights_read", "inputs_read", "outputs_written")
PARTS = ("compute", "onchip", "dram")


def cost_tables(section: dict) -> dict[str, dict[str, Any]]:
    """Name → validated cost table of the config's `energy` section: its presets, plus
    ``custom_costs``.

    The custom table is its `base` preset with the given keys replaced; if its `name` is
    one of the presets it takes that preset's place.
    """
    tables = {name: energy.costs(name) for name in section["presets"]}
    custom = section.get("custom_costs")
    if custom:
        base = energy.costs(custom.get("base") or "eyeriss65")
        name = custom.get("name") or "custom"
        table = {**base, "name": name,
                 "source": f"{base['name']} with config overrides (energy.custom_costs)"}
        for key in (*energy.COST_KEYS, "unit"):
            if custom.get(key) is not None:
                table[key] = custom[key]
        tables[name] = energy.costs(table)
    if not tables:
        raise ConfigError("config key 'energy.presets' is empty and no energy.custom_costs "
                          "is given: nothing to estimate energy with")
    return tables


def energy_columns(tables: dict[str, dict[str, Any]]) -> list[str]:
    """Energy column names, per table: total, compute/onchip/dram parts, unit."""
    cols: list[str] = []
    for name in tables:
        cols += [f"energy_{name}_model", *(f"energy_{name}_{p}_model" for p in PARTS),
                 f"energy_unit_{name}"]
    return cols


def _energy_cells(macs_count: float, acc: dict[str, Any], tables: dict[str, dict[str, Any]],
                  ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, table in tables.items():
        est = energy.estimate(macs_count, acc, table)
        out[f"energy_{name}_model"] = est["total"]
        for part in PARTS:
            out[f"energy_{name}_{part}_model"] = est[part]
        out[f"energy_unit_{name}"] = est["unit"]
    return out


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def profile_model(model: nn.Module, input_shape: Sequence[int],
                  tables: dict[str, dict[str, Any]], bytes_per_element: int = 4,
                  ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(layer rows, totals row) of one dense model for clips of `input_shape` (N,3,T,H,W).

    Totals are the column sums of the rows (checked against fvcore's model total).
    `model` is copied and never changed.
    """
    model = copy.deepcopy(model)
    layer_rows = macs.dense_profile(model, input_shape)
    summary = macs.dense_summary(model, input_shape)
    modules = dict(model.named_modules())
    mem = {r["layer"]: r for r in memory.dense_profile(model, input_shape, bytes_per_element)}
    zero = {k: 0 for k in ACCESS_KEYS}
    rows = []
    for r in layer_rows:
        acc = mem.get(r["layer"], zero)
        counts = {k: int(acc[k]) for k in ACCESS_KEYS}
        elements = sum(counts.values())
        exact = macs.exact_layer_macs(modules[r["layer"]], r["in_shape"], int(r["macs"]))
        rows.append({
            "layer": r["layer"], "type": r["type"], "macs": exact,
            "macs_fvcore": int(r["macs"]),
            "params": int(r["params"]), "in_shape": _shape(r["in_shape"]),
            "out_shape": _shape(r["out_shape"]), **counts, "accesses": elements,
            "bytes": elements * bytes_per_element,
            **_energy_cells(exact, counts, tables),
        })
    missing = set(mem) - {r["layer"] for r in rows}
    if missing:
        raise RuntimeError(f"memory profile has layers the MAC profile lacks: {sorted(missing)}")
    total_fvcore = sum(r["macs_fvcore"] for r in rows)
    if total_fvcore != summary["macs_total"]:
        raise RuntimeError(f"per-layer MACs sum to {total_fvcore}, fvcore's total is "
                           f"{summary['macs_total']}")
    totals: dict[str, Any] = {
        "input_shape": _shape(input_shape), "layers": len(rows),
        "macs": sum(r["macs"] for r in rows), "macs_fvcore": total_fvcore,
        "params": sum(r["params"] for r in rows),
        **{k: sum(r[k] for r in rows) for k in (*ACCESS_KEYS, "accesses", "bytes")},
        "bytes_per_element": bytes_per_element,
    }
    for col in energy_columns(tables):
        if col.startswith("energy_unit_"):
            totals[col] = tables[col[len("energy_unit_"):]]["unit"]
        else:
            totals[col] = sum(r[col] for r in rows)
    totals["ignored_ops"] = "; ".join(f"{op}:{n}" for op, n in summary["ignored_ops"].items())
    totals["not_macs"] = "; ".join(summary["not_macs"])
    return rows, totals


LAYER_COLUMNS = ["model", "layer", "type", "macs", "macs_fvcore", "params", "in_shape",
                 "out_shape", *ACCESS_KEYS, "accesses", "bytes"]
SUMMARY_COLUMNS = ["model", "input_shape", "layers", "macs", "macs_fvcore", "params",
                   *ACCESS_KEYS, "accesses", "bytes", "bytes_per_element"]


def run_profile(cfg: dict, models: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Profile the trained baseline of each model (default: config `models`) and write
    ``Paths.profile_layers`` and ``Paths.profile_summary``; returns both paths."""
    from dance.io import read_json, write_csv
    from dance.models.trained import load_trained
    from dance.paths import Paths

    paths = Paths(cfg)
    models = list(models or cfg["models"])
    num_classes = len(read_json(paths.manifest)["classes"])
    frames, size = cfg["dataset"]["frames"], cfg["dataset"]["size"]
    input_shape = (1, 3, frames, size, size)
    tables = cost_tables(cfg["energy"])
    bpe = cfg["energy"]["bytes_per_element"]
    layer_rows, summary_rows = [], []
    for name in models:
        model = load_trained(cfg, name, "baseline", num_classes)
        rows, totals = profile_model(model, input_shape, tables, bpe)
        layer_rows += [{"model": name, **r} for r in rows]
        summary_rows.append({"model": name, **totals})
    ecols = energy_columns(tables)
    write_csv(paths.profile_layers, layer_rows, LAYER_COLUMNS + ecols)
    write_csv(paths.profile_summary, summary_rows,
              SUMMARY_COLUMNS + ecols + ["ignored_ops", "not_macs"])
    return paths.profile_layers, paths.profile_summary
