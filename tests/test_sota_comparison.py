"""Comparison assembly (dance.sota.comparison) on synthetic records; numbers by hand.

Energy preset eyeriss65: one MAC costs 1 + 4·1 = 5, one accessed element 6 + 2 + 200 = 208.
"""

from __future__ import annotations

import csv

import pytest

from dance.errors import DanceError
from dance.io import write_json
from dance.measure.profile import cost_tables
from dance.paths import Paths
from dance.plan import aap_pairs
from dance.sota.comparison import COLUMNS, comparison_rows, write_comparison
from dance.sota.record import write_record

from conftest import tiny_config


def _acc(n):
    return {"weights_read": n, "inputs_read": 0, "outputs_written": 0}


def _setup(tmp_path, interpolate):
    cfg = tiny_config(tmp_path, models=["c3d"], aap={"points": [0.5, 0.4], "ablations": []},
                      energy={"presets": ["eyeriss65"]},
                      sota={"matched": {"interpolate": interpolate}})
    paths = Paths(cfg)
    dense = {"top1": 0.80, "macs": 1000, "params": 50, "accesses": _acc(100)}
    tables = cost_tables(cfg["energy"])
    n = 200

    def rec(method, point, top1, macs, acc):
        correct = [i < round(top1 * n) for i in range(n)]
        write_record(paths.sota_record("c3d", method, point), method=method, model="c3d",
                     operating_point=point, correct=correct, macs=macs, accesses=_acc(acc),
                     params=10, dense=dense, tables=tables)

    rec("dense", "dense", 0.80, 1000, 100)      # energy 5000 + 20800 = 25800
    rec("l1", "mild", 0.795, 600, 60)           # 3000 + 12480 = 15480
    rec("l1", "aggressive", 0.70, 300, 30)      # 1500 + 6240 = 7740
    rec("selector", "oracle", 0.81, 200, 20)    # cheap, but not deployable
    for point, top1, e in ((0, 0.80, 8000.0), (1, 0.75, 4000.0)):
        write_json(paths.aap_eval("c3d", "dance", point), {
            "model": "c3d", "variant": "dance", "point": point, "point_value": 0.5,
            "backbone_stage": "ava", "top1": top1, "clips": n,
            "macs": {"dense": 1000, "clip_mean": 400.0, "clip_p5": 300.0, "clip_p95": 500.0},
            "memory": {"dense": 100, "mean": 40.0},
            "energy": {"eyeriss65": {"mean": e, "dense": 25800.0, "unit": "MAC-normalised"}},
            "overhead": {"controller_macs": 100, "stats_ops": 50, "pruning_ops_mean": 50.0}})
    return cfg


def test_rows_follow_the_contract(tmp_path):
    cfg = _setup(tmp_path, interpolate=False)
    rows = {(r["method"], r["operating_point"]): r for r in _rows(cfg)}
    d = rows[("dance", "0")]
    assert d["macs_mean"] == 600.0 and d["overhead_macs"] == 200.0 and d["macs_p95"] == 700.0
    assert d["energy_eyeriss65"] == pytest.approx(8000 + 5 * 200)
    assert d["top1_delta"] == pytest.approx(0.0) and d["source_latency"] == "not measured"
    assert d["params"] is None                     # no controller checkpoint: not counted
    m = rows[("l1", "mild")]
    assert m["energy_eyeriss65"] == pytest.approx(15480) and m["macs_ratio"] == 0.6
    assert m["top1_delta"] == pytest.approx(-0.005) and m["source_macs"] == "counted"
    assert rows[("dense", "dense")]["energy_eyeriss65"] == pytest.approx(25800)
    out = write_comparison(cfg)
    with open(out, newline="") as fh:
        header = next(csv.reader(fh))
    assert header[: len(COLUMNS)] == COLUMNS
    with open(Paths(cfg).comparison_literature, newline="") as fh:
        lit = list(csv.DictReader(fh))
    assert lit and {r["source_value"] for r in lit} == {"paper"}


def _rows(cfg):
    """comparison.csv's rows of `cfg`'s records, as write_comparison computes them."""
    return comparison_rows(Paths(cfg), cfg["models"], aap_pairs(cfg), cfg["energy"])


def _matched(cfg):
    write_comparison(cfg)
    with open(Paths(cfg).comparison_matched, newline="") as fh:
        return list(csv.DictReader(fh))


def test_matched_accuracy_without_interpolation(tmp_path):
    (row,) = _matched(_setup(tmp_path, interpolate=False))
    # DANCE: point 0 (0.80, 9000); others: l1 mild (0.795, 15480) beats dense (25800);
    # the selector's oracle (cheaper) is not deployable and is left out
    assert row["dance_point"] == "0" and float(row["dance_energy"]) == pytest.approx(9000)
    assert row["best_other_method"] == "l1" and row["best_other_point"] == "mild"
    assert float(row["efficiency_ratio"]) == pytest.approx(15480 / 9000)
    assert row["meets_claim"] == "True"


def test_matched_accuracy_with_interpolation(tmp_path):
    (row,) = _matched(_setup(tmp_path, interpolate=True))
    # floor 0.79. DANCE: (0.75, 5000)-(0.80, 9000): 5000 + 0.8·4000 = 8200.
    # l1: (0.70, 7740)-(0.795, 15480): 7740 + (0.09/0.095)·7740
    l1 = 7740 + (0.09 / 0.095) * 7740
    assert float(row["dance_energy"]) == pytest.approx(8200)
    assert float(row["best_other_energy"]) == pytest.approx(l1)
    assert float(row["efficiency_ratio"]) == pytest.approx(l1 / 8200)


def test_dance_losing_is_reported(tmp_path):
    cfg = _setup(tmp_path, interpolate=False)
    path = Paths(cfg).aap_eval("c3d", "dance", 0)
    import json
    ev = json.loads(path.read_text())
    ev["energy"]["eyeriss65"]["mean"] = 20000.0
    write_json(path, ev)
    (row,) = _matched(cfg)
    assert float(row["efficiency_ratio"]) == pytest.approx(15480 / 21000)
    assert row["meets_claim"] == "False" and "does not win" in row["note"]


def test_missing_dense_record_is_an_error(tmp_path):
    cfg = _setup(tmp_path, interpolate=False)
    Paths(cfg).sota_record("c3d", "dense", "dense").unlink()
    with pytest.raises(DanceError, match="no dense record"):
        _rows(cfg)
