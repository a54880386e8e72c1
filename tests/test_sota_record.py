"""Operating-point records (dance.sota.record): hand-computed values on a toy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dance.errors import DanceError
from dance.measure.energy import costs
from dance.sota.record import build_record, read_record, static_costs, write_record

TABLE = {"toy": {**costs("eyeriss65"), "mac": 1.0, "rf": 0.0, "rf_per_mac": 0, "noc": 0.0,
                 "buffer": 0.0, "dram": 10.0, "name": "toy", "unit": "u"}}
DENSE = {"top1": 0.75, "macs": 1000.0, "params": 50,
         "accesses": {"weights_read": 50, "inputs_read": 30, "outputs_written": 20}}


def _record(**kw):
    args = dict(method="toy", model="m", operating_point="p1", correct=[1, 0, 1, 1],
                macs=[400, 600, 800, 200], overhead_macs=10,
                accesses={"weights_read": [10, 10, 10, 10], "inputs_read": [20, 0, 20, 0],
                          "outputs_written": 10},
                params={"a": 30, "b": 5}, dense=DENSE, tables=TABLE)
    args.update(kw)
    return build_record(**args)


def test_record_values_by_hand():
    r = _record()
    assert r["top1"] == 0.75 and r["top1_delta"] == 0.0
    assert r["macs"]["clip_mean"] == 500.0 and r["macs"]["ratio_mean"] == 0.5
    assert r["macs"]["overhead_mean"] == 10.0
    assert r["memory"]["mean"] == 30.0 and r["memory"]["ratio"] == 0.3
    # energy per clip = macs + 10 * accesses: 400+400, 600+200, 800+400, 200+200
    assert r["energy"]["toy"]["mean"] == pytest.approx((800 + 800 + 1200 + 400) / 4)
    assert r["energy"]["toy"]["dense"] == 1000 + 10 * 100
    assert r["params"]["total"] == 35
    assert r["latency"]["median_ms"] is None and r["sources"]["latency"] == "not measured"


def test_latency_speedup_and_source():
    r = _record(latency={"median_ms": 2.0, "dense_median_ms": 5.0, "threads": 1})
    assert r["latency"]["speedup"] == 2.5 and r["sources"]["latency"] == "measured"


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="overhead"):
        _record(overhead_macs=500)
    with pytest.raises(ValueError, match="one value per clip"):
        _record(macs=[1, 2, 3])
    with pytest.raises(DanceError, match="file name"):
        _record(operating_point="a/b")
    bad = tmp_path / "x.json"
    bad.write_text('{"top1": 1}')
    with pytest.raises(DanceError, match="x.json"):
        read_record(bad)


def test_write_then_read(tmp_path):
    path = write_record(tmp_path / "r.json", **dict(
        method="toy", model="m", operating_point=3, correct=[True], macs=[5.0],
        accesses={"weights_read": 1, "inputs_read": 1, "outputs_written": 1}, params=7,
        dense=DENSE, tables=TABLE))
    rec = read_record(path)
    assert rec["operating_point"] == "3" and rec["params"]["networks"] == {"net": 7}


def test_static_costs_of_a_small_net():
    net = nn.Sequential(nn.Conv3d(2, 4, 1, bias=False), nn.Flatten(), nn.Linear(4 * 2 * 3 * 3, 5))
    c = static_costs(net, (2, 2, 3, 3))
    # conv 1x1x1: 4 out * 2 in * 18 positions = 144; linear 72*5 = 360
    assert c["macs"] == 144 + 360 == c["macs_fvcore"]
    assert c["params"] == 8 + 72 * 5 + 5
    assert c["accesses"]["inputs_read"] == 2 * 18 + 72
    assert torch.is_grad_enabled()


def test_bench_latency_names_its_source_relative_to_results_dir(tiny):
    """Two runs into different folders write the same record (determinism), and committed
    results do not carry the machine's paths."""
    from dance.paths import Paths
    from dance.sota.bench import bench_latency

    path = Paths(tiny).sota_bench("c3d")
    assert path.is_absolute()
    assert bench_latency(Paths(tiny), "c3d", "l1_mild") == {
        "reason": "not benched (metrics/c3d/bench_sota.csv missing)"}
    path.parent.mkdir(parents=True)
    path.write_text("variant,median_ms,speedup_vs_dense,speedup_status,threads\n"
                    "dense,8.0,1.0,measured,2\nl1_mild,5.0,1.6,measured,2\n")
    got = bench_latency(Paths(tiny), "c3d", "l1_mild")
    assert got == {"median_ms": 5.0, "dense_median_ms": 8.0, "speedup": 1.6, "threads": 2,
                   "bench": "metrics/c3d/bench_sota.csv"}
