"""The per-layer latency table (issue 20.1) and the latency-aware budget (20.2): fixed
decisions at each grid point, the table measured on a small network with its conditions,
the trilinear latency model (exact on a linear table, differentiable), the soft path's
latency ratio with gradients reaching the thresholds, and the configuration's errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from dance.aap.latency_table import LatencyModel, grid_decision, overhead_summary, write_table
from dance.aap.model import AAPNet
from dance.errors import ConfigError, DanceError
from dance.io import read_json
from dance.models import build_model

from conftest import tiny_config


def test_grid_decisions_keep_the_share_as_the_kernels_can_use_it():
    fr, ch, fe = grid_decision((24, 8, 16, 16), 0.5, 0.4, 0.25, channel_multiple=8)
    assert fr == [2, 3, 4, 5]                              # a contiguous run in the middle
    assert ch.tolist() == list(range(16))                  # 0.4 × 24 = 9.6 → 10 → 16 (×8)
    assert int(fe.sum()) == 64 and fe[4:12, 4:12].all()    # an 8×8 blob in the middle
    assert grid_decision((24, 8, 16, 16), 1.0, 1.0, 1.0) == (None, None, None)
    # a 2-frame input keeps its frames (min_frames), as the controller does
    assert grid_decision((8, 2, 4, 4), 0.5, 1.0, 1.0, min_frames=4)[0] is None


def _linear_model(layers: int = 2) -> tuple[LatencyModel, torch.Tensor]:
    grid = ([0.5, 1.0], [0.25, 0.5, 1.0], [0.1, 0.5, 1.0])
    coef = torch.tensor([[1.0, 2.0, 3.0], [0.5, 4.0, 1.0]])[:layers]   # ms per unit share
    table = torch.empty(layers, 2, 3, 3)
    for li, (i, f), (j, c), (k, s) in itertools.product(range(layers), *map(enumerate, grid)):
        table[li, i, j, k] = 0.2 + coef[li, 0] * f + coef[li, 1] * c + coef[li, 2] * s
    dense = table[:, -1, -1, -1] - 0.05                   # the pruned path's 50 µs overhead
    return LatencyModel(grid, table, dense, floor_ms=3.0, dense_ms=20.0,
                        layers=[f"l{i}" for i in range(layers)]), coef


def test_latency_model_is_exact_on_a_linear_table_and_differentiable():
    model, coef = _linear_model()
    shares = torch.tensor([[[0.7, 0.3, 0.2], [0.9, 0.8, 0.6]]], dtype=torch.float64,
                          requires_grad=True)
    per_layer = 0.2 + (coef.double() * shares[0]).sum(1)
    assert model.layer_ms(shares)[0].tolist() == pytest.approx(per_layer.detach().tolist())
    ratio = model.ratio(shares)
    assert float(ratio.detach()) == pytest.approx((3.0 + float(per_layer.detach().sum())) / 20.0)
    ratio.sum().backward()
    torch.testing.assert_close(shares.grad[0], coef.double() / 20.0)
    # outside the grid the share is clamped (no extrapolation below the smallest share)
    low = torch.tensor([[[0.1, 0.1, 0.01], [1.0, 1.0, 1.0]]], dtype=torch.float64)
    assert float(model.layer_ms(low)[0, 0]) == pytest.approx(0.2 + 0.5 + 0.5 + 0.3)
    # a layer that never runs the pruned path costs its dense conv
    pruned = torch.tensor([True, False])
    ones = torch.ones(1, 2, 3, dtype=torch.float64)
    expect = (3.0 + float(model.table_ms[0, -1, -1, -1]) + float(model.dense_layer_ms[1])) / 20
    assert float(model.ratio(ones, pruned)) == pytest.approx(expect)


def test_the_table_is_measured_on_the_bench_network_with_its_conditions(tmp_path):
    from dance.data import prepare

    cfg = tiny_config(tmp_path, aap={"latency_table": {"frames": [0.5, 1.0],
                                                       "channels": [0.5, 1.0],
                                                       "features": [0.25, 1.0],
                                                       "warmup": 0, "repeats": 2}},
                      bench={"threads": 1})
    prepare(cfg, progress=False)
    out = write_table(cfg, "c3d")
    import csv

    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    cond = read_json(out.with_suffix(".json"))
    net = AAPNet(build_model("c3d", 10, width=0.125, frames=8, size=32), None,
                 input_shape=(3, 8, 32, 32))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    assert layers == net.names and len(rows) == 8 * len(layers)
    for r in rows:
        assert float(r["median_ms"]) > 0 and float(r["dense_median_ms"]) > 0
        assert int(r["macs"]) <= int(r["dense_macs"])
        full = float(r["frames_share"]) == float(r["channels_share"]) == 1.0
        if full and float(r["features_share"]) == 1.0:
            assert int(r["macs"]) == int(r["dense_macs"])
            assert int(r["kept_channels"]) == int(r["in_channels"])
    halved = [r for r in rows if float(r["channels_share"]) == 0.5
              and float(r["frames_share"]) == float(r["features_share"]) == 1.0]
    assert all(int(r["kept_channels"]) == -(-int(r["in_channels"]) // 2 // 8) * 8
               or int(r["kept_channels"]) == int(r["in_channels"]) for r in halved)
    assert 0 < cond["network_floor_ms"] < cond["network_dense_ms"]
    assert cond["threads"] == 1 and cond["grid"]["features"] == [0.25, 1.0]
    assert cond["environment"]["cpu"] and cond["clip"] == [3, 8, 32, 32]
    model = LatencyModel.load(out, net.names)
    ones = torch.ones(1, len(layers), 3)
    dense_layers = sum(float(r["dense_median_ms"]) for r in rows
                       if float(r["frames_share"]) == 0.5 and float(r["channels_share"]) == 0.5
                       and float(r["features_share"]) == 0.25)
    off = model.ratio(ones, torch.zeros(len(layers), dtype=torch.bool))
    assert float(off) == pytest.approx((cond["network_floor_ms"] + dense_layers)
                                       / cond["network_dense_ms"])
    over = cond["per_layer_overhead"]
    assert list(over) == layers and all(o["decide_ms"] > 0 for o in over.values())
    assert cond["overhead_repeats"] > cond["repeats"]       # the overheads' own, longer run
    # a layer that decides pays its measured decision overhead on top of the grid's time
    decide = [max(0.0, o["decide_ms"] - o["all_kept_ms"]) for o in over.values()]
    assert model.decide_ms.tolist() == pytest.approx(decide)
    only_first = torch.zeros(len(layers), dtype=torch.bool)
    only_first[0] = True
    first_all_kept = float(model.layer_ms(ones)[0, 0])
    assert float(model.ratio(ones, only_first) - off) * cond["network_dense_ms"] == pytest.approx(
        first_all_kept + decide[0] - float(model.dense_layer_ms[0]))
    assert "deciding at τ → 0" in overhead_summary(out)
    bad = tiny_config(tmp_path, aap={"latency_table": {"channels": [0.5, 0.75]}})
    with pytest.raises(ConfigError, match=r"aap\.latency_table\.channels.*must hold 1\.0"):
        write_table(bad, "c3d")
    with pytest.raises(DanceError, match="re-run `python -m dance latency-table`"):
        LatencyModel.load(out, net.names[:-1])
    broken = out.with_name("broken.csv")
    broken.write_text(out.read_text().replace("median_ms", "median", 1))
    out.with_suffix(".json").replace(broken.with_suffix(".json"))
    with pytest.raises(DanceError, match=r"broken\.csv .*not one written by"):
        LatencyModel.load(broken, net.names)


def test_soft_latency_ratio_reaches_the_thresholds_and_a_missing_table_is_named(tmp_path):
    from dance.aap.latency_table import latency_model
    from dance.paths import Paths

    model, _ = _linear_model(layers=2)
    backbone = build_model("c3d", 10, width=0.125, frames=8, size=32)
    net = AAPNet(backbone, None, input_shape=(3, 8, 32, 32))
    names = net.names
    # a two-layer table for a network with more layers: use its first two layers' entries
    table = model.table_ms.repeat(len(names), 1, 1, 1)[:len(names)]
    model = LatencyModel(([0.5, 1.0], [0.25, 0.5, 1.0], [0.1, 0.5, 1.0]), table,
                         table[:, -1, -1, -1], 3.0, 20.0, names)
    tau = torch.full((len(names), 3), 0.8, requires_grad=True)
    net.state.fixed_tau = tau
    net.train()
    net(torch.rand(2, 3, 8, 32, 32))
    ratio = net.expected_latency_ratio(model)
    assert ratio.shape == (2,) and bool(torch.isfinite(ratio).all())
    ratio.mean().backward()
    assert float(tau.grad.abs().sum()) > 0            # the budget can move the thresholds
    paths = Paths(tiny_config(tmp_path))
    with pytest.raises(ConfigError, match=r"aap\.cost.*python -m dance latency-table --model c3d"):
        latency_model("latency", paths, "c3d", net.names)
    assert latency_model("macs", paths, "c3d", net.names) is None


def test_a_latency_controller_decides_only_where_deciding_can_pay(tmp_path):
    """A layer whose fastest grid point saves less than its decision overhead gets no
    decisions (the first pruned entry would cost the whole overhead, a step soft masks
    cannot weigh); a missing table is named with the command that writes it."""
    from dance.aap.factory import build_net
    from dance.aap.latency_table import host_latency_model, layers_that_pay
    from dance.paths import Paths

    model, _ = _linear_model(layers=2)        # layer 0 saves 4.65 ms at best, layer 1 4.10
    model.decide_ms.copy_(torch.tensor([4.0, 4.2], dtype=torch.float64))
    assert layers_that_pay(model) == [True, False]
    cfg = tiny_config(tmp_path, aap={"cost": "latency", "min_layer_share": 0.0})
    backbone = build_model("c3d", 10, width=0.125, frames=8, size=32)
    net = AAPNet(backbone, None, input_shape=(3, 8, 32, 32))
    with pytest.raises(ConfigError, match=r"aap\.cost.*python -m dance latency-table --model c3d"):
        host_latency_model(Paths(cfg), "c3d", net.names)
    with pytest.raises(ConfigError, match=r"latency-table --model c3d"):
        build_net(cfg, "c3d", "dance", 10, backbone=backbone)


def test_the_best_predicted_ratio_is_the_least_over_every_grid_choice():
    """`best_ratio` (the ceiling a controller trained against the table could be predicted
    to reach) is the least ratio over every way to set each layer to a grid point or leave
    it dense; a layer whose decision overhead exceeds its best saving is left dense."""
    model, _ = _linear_model(layers=2)
    model.decide_ms.copy_(torch.tensor([0.5, 4.2], dtype=torch.float64))
    grid = [getattr(model, f"grid{d}").tolist() for d in range(3)]
    points = list(itertools.product(*grid))
    best, shares = model.best_ratio()
    everything = []
    for choice in itertools.product([None, *points], repeat=2):
        pruned = torch.tensor([c is not None for c in choice])
        s = torch.tensor([[c or (1.0, 1.0, 1.0) for c in choice]], dtype=torch.float64)
        everything.append((float(model.ratio(s, pruned)), choice))
    least = min(everything, key=lambda e: e[0])
    assert best == pytest.approx(least[0])
    assert shares == list(least[1])
    assert shares[1] is None and shares[0] == (0.5, 0.25, 0.1)


def test_a_table_without_decision_overheads_loads_with_none(tmp_path):
    """A device's table has no decision overheads (`per_layer_overhead` absent or null):
    it loads, and deciding is charged nothing. Failed before on null (`in` on None)."""
    import json

    path = tmp_path / "t.csv"
    _write_table(path, ["a", "b"], 1.0)
    for overhead in (None, "absent"):
        cond = {"network_floor_ms": 1.0, "network_dense_ms": 10.0}
        if overhead != "absent":
            cond["per_layer_overhead"] = overhead
        path.with_suffix(".json").write_text(json.dumps(cond))
        model = LatencyModel.load(path, ["a", "b"])
        assert model.decide_ms.tolist() == [0.0, 0.0]


def _write_table(path, layers: list[str], ms: float) -> None:
    """A latency table as `latency-table` writes it (the columns and conditions the model
    reads): every grid point of every layer at `ms`, dense at 2·`ms`."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["layer,frames_share,channels_share,features_share,median_ms,dense_median_ms"]
    lines += [f"{n},{f},{c},{s},{ms},{2 * ms}" for n in layers
              for f, c, s in itertools.product([0.5, 1.0], [0.5, 1.0], [0.25, 1.0])]
    path.write_text("\n".join(lines) + "\n")
    path.with_suffix(".json").write_text(json.dumps(
        {"network_floor_ms": 1.0, "network_dense_ms": 10.0}))


def test_a_pinned_table_is_what_a_latency_controller_trains_against(tmp_path):
    """aap.latency_table_file: a table measured earlier (on this host, to train the same
    controllers in two runs, or on a device) replaces this run's measured one; its content
    is in the controller's identity record, and a missing one is named with its key."""
    from dance.aap.factory import aap_meta
    from dance.aap.latency_table import host_latency_model
    from dance.paths import Paths

    names = AAPNet(build_model("c3d", 10, width=0.125, frames=8, size=32), None,
                   input_shape=(3, 8, 32, 32)).names
    pinned = str(tmp_path / "pinned" / "{model}_table.csv")
    cfg = tiny_config(tmp_path, aap={"cost": "latency", "latency_table_file": pinned})
    here = tiny_config(tmp_path, aap={"cost": "latency"})
    _write_table(Paths(here).latency_table("c3d"), names, 1.0)        # this run's table
    with pytest.raises(ConfigError, match=r"aap\.latency_table_file.*pinned/c3d_table\.csv"):
        host_latency_model(Paths(cfg), "c3d", names)
    _write_table(tmp_path / "pinned" / "c3d_table.csv", names, 0.5)
    assert Paths(cfg).training_latency_table("c3d") == tmp_path / "pinned" / "c3d_table.csv"
    odd = tiny_config(tmp_path, aap={"latency_table_file": "t/{name}_{model}.csv"})
    assert Paths(odd).training_latency_table("r3d18").as_posix() == "t/{name}_r3d18.csv"
    assert float(host_latency_model(Paths(cfg), "c3d", names).dense_layer_ms[0]) == 1.0
    assert float(host_latency_model(Paths(here), "c3d", names).dense_layer_ms[0]) == 2.0
    before = aap_meta(cfg, "c3d", "dance", 0, 10)
    assert before["latency_table"] != aap_meta(here, "c3d", "dance", 0, 10)["latency_table"]
    _write_table(tmp_path / "pinned" / "c3d_table.csv", names, 0.25)    # re-measured
    again = aap_meta(cfg, "c3d", "dance", 0, 10)["latency_table"]
    assert again[0] != before["latency_table"][0]
    conditions = tmp_path / "pinned" / "c3d_table.json"   # the floor and overheads it reads
    conditions.write_text(conditions.read_text().replace("1.0", "1.5"))
    assert aap_meta(cfg, "c3d", "dance", 0, 10)["latency_table"][1] != again[1]
