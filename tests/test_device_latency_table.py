"""A device's per-layer latency table: the bundle's single-conv graphs of every layer × grid
point, the runner timing them on this host's ONNX Runtime, the ingest into the host table's
format, a controller's latency model reading it, and "not measured" without layer records."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from test_devices import _run_runner, _tiny_bundle

from dance.aap.latency_table import (
    COLUMNS,
    LatencyModel,
    grid_decision,
    host_latency_model,
    site_inputs,
)
from dance.devices import device_runner, drivers, layer_table, logs
from dance.devices.graph import static_pools
from dance.errors import DanceError
from dance.io import read_json, write_json
from dance.measure.macs import batch_effective_macs
from dance.measure.variants import prepare_network
from dance.models import build_model
from dance.paths import Paths

from conftest import tiny_config

GRID = {"frames": [0.5, 1.0], "channels": [0.5, 1.0], "features": [0.25, 1.0],
        "warmup": 1, "repeats": 2}
CHANNEL_MULTIPLE, MIN_FRAMES = 3, 4   # 3: the rounding changes kept channels here


def _network():
    torch.manual_seed(0)
    model = build_model("c3d", 5, width=0.125, frames=8, size=32).eval()
    model = static_pools(prepare_network(model, True), (3, 8, 32, 32))
    return model, torch.rand(1, 3, 8, 32, 32)


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A tiny bundle with c3d's table graphs (and a stand-in floor graph), run by the
    runner here, its log placed as a hand-placed Jetson log and ingested."""
    pytest.importorskip("onnxruntime")
    bundle = _tiny_bundle(tmp_path_factory.mktemp("bundle"))
    model, clip = _network()
    layers = layer_table.export_layer_graphs(model, clip, "c3d", GRID, CHANNEL_MULTIPLE,
                                             MIN_FRAMES, 15, bundle)
    manifest = read_json(bundle / "manifest.json")
    manifest["latency_tables"] = [{      # floor: any graph of a clip will do for the runner
        "model": "c3d", "dense": "c3d:dense", "floor": "c3d_dance_0.onnx", "layers": layers,
        "warmup": GRID["warmup"], "repeats": GRID["repeats"],
        "grid": {k: GRID[k] for k in ("frames", "channels", "features")},
        "channel_multiple": CHANNEL_MULTIPLE, "min_frames": MIN_FRAMES}]
    write_json(bundle / "manifest.json", manifest)
    out = bundle / "run.jsonl"
    res = _run_runner(bundle, out, "--power", "none", "--table-max-sessions", "4")
    assert res.returncode == 0, res.stderr
    cfg = tiny_config(tmp_path_factory.mktemp("cfg"))
    paths = Paths(cfg)
    shutil.copytree(bundle, paths.device_bundle)
    folder = paths.device_logs("jetson_nano")
    folder.mkdir(parents=True)
    shutil.copyfile(out, folder / "run-1.jsonl")
    result = read_json(drivers.measure_device(cfg, "jetson_nano"))
    return model, clip, cfg, out, result


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_device_table_has_every_layer_and_grid_point_with_the_host_decisions(table_run):
    model, clip, cfg, _, result = table_run
    path = Paths(cfg).device_latency_table("jetson_nano", "c3d")
    assert result["status"] == "measured" and result["latency_tables"]["c3d"] == str(path)
    assert result["latency_tables"]["r3d18"].startswith("not measured")
    assert not Paths(cfg).device_latency_table("jetson_nano", "r3d18").exists()
    rows = _rows(path)
    assert list(rows[0]) == COLUMNS
    names = [n for n, _, _ in model.prunable_convs()]
    grid = [(f, c, s) for f in GRID["frames"] for c in GRID["channels"]
            for s in GRID["features"]]
    assert [(r["layer"], float(r["frames_share"]), float(r["channels_share"]),
             float(r["features_share"])) for r in rows] == [(n, *g) for n in names for g in grid]
    for r in rows:
        assert float(r["median_ms"]) > 0 and float(r["dense_median_ms"]) > 0
        assert float(r["p25_ms"]) <= float(r["median_ms"]) <= float(r["p75_ms"])
        assert int(r["n"]) == GRID["repeats"]
        assert float(r["ratio_to_dense"]) == pytest.approx(
            float(r["median_ms"]) / float(r["dense_median_ms"]))
    # kept counts and MACs: the host table's fixed decisions, computed here independently
    inputs = site_inputs(model, clip)
    pruned = 0
    for (name, _, conv), layer_rows in zip(model.prunable_convs(),
                                           [rows[i:i + len(grid)]
                                            for i in range(0, len(rows), len(grid))],
                                           strict=True):
        c, t, h, w = inputs[name].shape[1:]
        for r, (fr, ch, fe) in zip(layer_rows, grid, strict=True):
            frames, channels, features = grid_decision((c, t, h, w), fr, ch, fe,
                                                       CHANNEL_MULTIPLE, MIN_FRAMES)
            fm = torch.ones(t, dtype=torch.bool)
            if frames is not None:
                fm[:] = False
                fm[frames] = True
            cm = torch.zeros(c, dtype=torch.bool)
            cm[channels if channels is not None else slice(None)] = True
            sm = (torch.ones(h, w, dtype=torch.bool) if features is None
                  else features.bool())
            assert (int(r["in_channels"]), int(r["in_frames"]), int(r["height"]),
                    int(r["width"])) == (c, t, h, w)
            assert int(r["kept_frames"]) == int(fm.sum())
            assert int(r["kept_channels"]) == int(cm.sum())
            assert int(r["kept_features"]) == int(sm.sum())
            assert int(r["macs"]) == int(batch_effective_macs(conv, (c, t, h, w), fm[None],
                                                              cm[None], sm[None])[0])
            pruned += int(r["macs"]) < int(r["dense_macs"])
    assert pruned > len(rows) // 2


def test_table_graphs_are_the_static_conv_of_the_kept_sizes(table_run):
    import onnx

    model, clip, cfg, _, _ = table_run
    manifest = read_json(Paths(cfg).device_bundle / "manifest.json")
    inputs = site_inputs(model, clip)
    for layer, (name, _, conv) in zip(manifest["latency_tables"][0]["layers"],
                                      model.prunable_convs(), strict=True):
        c, t, h, w = inputs[name].shape[1:]
        dense = layer["graphs"][0]
        assert dense["key"] == "dense" and dense["input"] == [1, c, t, h, w]
        for g in layer["graphs"][1:]:
            _, k, ti, hi, wi = g["input"]
            assert k == g["kept_channels"]
            # the frames / features a kept run and window read: at least the kept ones
            assert g["kept_frames"] <= ti <= t + 2 * conv.padding[0]
            assert g["kept_features"] <= hi * wi
            proto = onnx.load(str(Paths(cfg).device_bundle / g["file"]))
            assert [n.op_type for n in proto.graph.node] == ["ConstantOfShape"] * 2 + ["Conv"]
            assert (Paths(cfg).device_bundle / g["file"]).stat().st_size < 2000  # no weights
        shares = {g["key"]: g["input"] for g in layer["graphs"]}
        assert shares["1,1,1"] == dense["input"]
        assert shares["1,0.5,1"][1] < c


def test_static_conv_computes_the_outputs_the_host_pruned_path_computes():
    """On the input with the dropped frames/channels/features zeroed, a grid point's static
    conv (with the layer's weights) gives exactly the outputs PrunedConv computes for that
    decision, at their place; every other output of PrunedConv is the bias alone."""
    import torch.nn.functional as F

    from dance.aap.execute import PrunedConv, masks_from_decision
    from dance.aap.latency_table import table_grid

    model, clip = _network()
    inputs = site_inputs(model, clip)
    windowed = 0
    for name, _, conv in model.prunable_convs():
        x = inputs[name].contiguous()
        in_shape = tuple(int(v) for v in x.shape[1:])
        plan = PrunedConv(conv, channel_multiple=CHANNEL_MULTIPLE)
        for shares in table_grid(GRID):
            d = grid_decision(in_shape, *shares, CHANNEL_MULTIPLE, MIN_FRAMES)
            with torch.no_grad():
                want = plan(x, decision=d)[0].contiguous()
            s = layer_table.static_conv(conv, in_shape, d, plan.crop_max)
            fm, cm, sm = masks_from_decision(in_shape, *d)
            xm = (x * fm[:, None, None] * sm)[:, cm]
            p = [int(v) for v in conv.padding]
            xp = F.pad(xm, (p[2], p[2], p[1], p[1], p[0], p[0]))
            for axis in range(3):
                start = s["in_start"][axis] + p[axis] + s["pads"][axis]
                xp = xp.narrow(2 + axis, start, s["input"][2 + axis])
            assert list(xp.shape) == s["input"]
            with torch.no_grad():
                got = F.conv3d(xp, conv.weight[:, cm], conv.bias, conv.stride, s["pads"][:3])
            assert list(got.shape) == s["output"]
            part = want
            for axis in range(3):
                part = part.narrow(2 + axis, s["out_start"][axis], s["output"][2 + axis])
            torch.testing.assert_close(got, part, rtol=1e-4, atol=1e-5)
            rest = want.clone()
            rest[tuple([slice(None)] * 2 + [slice(o, o + n) for o, n in zip(
                s["out_start"], s["output"][2:], strict=True)])] = float("nan")
            bias = conv.bias.view(1, -1, 1, 1, 1).expand_as(want)
            outside = ~rest.isnan()
            torch.testing.assert_close(rest[outside], bias[outside])
            windowed += s["input"][2:] != [in_shape[1], *in_shape[2:]]
    assert windowed > 0


def test_runner_times_each_layer_interleaved_and_rotated(table_run):
    _, _, _, out, _ = table_run
    log = logs.read_runner_log(out)
    assert log["header"]["version"] == device_runner.LOG_VERSION
    assert log["header"]["latency_tables"] == ["c3d"]
    calls = [c for c in log["layer_call"] if c["layer"] == "conv2"]
    sessions = [s for s in log["layer_session"] if s["layer"] == "conv2"]
    assert len(sessions) == 3                          # 9 graphs, 4 at once, dense in each
    assert all(s["keys"][0] == "dense" and len(s["keys"]) <= 4 for s in sessions)
    assert {c["key"] for c in calls} == {"dense"} | {
        f"{f:g},{c:g},{s:g}" for f in GRID["frames"] for c in GRID["channels"]
        for s in GRID["features"]}
    first = calls[:4 * GRID["repeats"]]               # the first session's rounds
    assert [c["key"] for c in first[::4]] == sessions[0]["keys"][:GRID["repeats"]]
    net = [c for c in log["layer_call"] if c["layer"] is None]
    assert {c["key"] for c in net} == {"dense", "floor"}
    assert len(net) == 2 * 3 * GRID["repeats"]        # graphs × clips × repeats


def test_latency_model_trains_against_the_device_table(table_run, tmp_path):
    model, _, cfg, _, _ = table_run
    path = Paths(cfg).device_latency_table("jetson_nano", "c3d")
    cond = read_json(path.with_suffix(".json"))
    assert cond["device"] == "test" and cond["measured_on"] == "device"
    assert cond["floor_source"] == "floor graph timed on the device"
    assert cond["network_dense_ms"] > 0 and cond["network_floor_ms"] > 0
    names = [n for n, _, _ in model.prunable_convs()]
    lat = LatencyModel.load(path, names)
    full = torch.ones(1, len(names), 3, dtype=torch.float64)
    dense = {r["layer"]: float(r["median_ms"]) for r in _rows(path)
             if r["frames_share"] == r["channels_share"] == r["features_share"] == "1.0"}
    want = (cond["network_floor_ms"] + sum(dense.values())) / cond["network_dense_ms"]
    assert float(lat.ratio(full)[0]) == pytest.approx(want)
    assert float(lat.ratio(full * 0.5)[0]) != float(lat.ratio(full)[0])
    # aap.latency_table_file names it: the table a controller of c3d trains against
    pinned = Paths(tiny_config(tmp_path, aap={"latency_table_file": str(path).replace(
        "/c3d/", "/{model}/")}))
    assert pinned.training_latency_table("c3d") == path
    trained = host_latency_model(pinned, "c3d", names)
    assert float(trained.ratio(full * 0.5)[0]) == float(lat.ratio(full * 0.5)[0])
    # without the floor graph's timings: dense network − the layers' dense convs
    log = logs.read_runner_log(Paths(cfg).device_logs("jetson_nano") / "run-1.jsonl")
    log["layer_call"] = [c for c in log["layer_call"] if c["key"] != "floor"]
    manifest = read_json(Paths(cfg).device_bundle / "manifest.json")
    derived = layer_table.device_tables(log, manifest)["c3d"]["conditions"]
    assert derived["network_floor_ms"] == pytest.approx(
        derived["network_dense_ms"] - derived["layer_dense_sum_ms"])
    assert "no floor graph" in derived["floor_source"]


def test_a_log_without_layer_records_or_no_device_gives_no_table(table_run, tmp_path):
    _, _, cfg, out, _ = table_run
    paths = Paths(cfg)
    folder = paths.device_logs("jetson_nano")
    # an older runner's log (version 2: no table records) is newer: read, and no table
    old = [json.loads(line) for line in out.read_text().splitlines()]
    old = [r for r in old if r["type"] not in ("table", "layer_session", "layer_call")]
    old[0]["version"] = 2
    (folder / "run-2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    try:
        result = read_json(drivers.measure_device(cfg, "jetson_nano"))
        assert result["status"] == "measured"
        assert result["latency_tables"]["c3d"] == ("not measured: run-2.jsonl has no "
                                                   "per-layer timings")
        path = paths.device_latency_table("jetson_nano", "c3d")
        assert not path.exists() and not path.with_suffix(".json").exists()
    finally:
        (folder / "run-2.jsonl").unlink()
        drivers.measure_device(cfg, "jetson_nano")    # the table again, for the other tests
    # a device that never ran: no table, "not measured"
    res = read_json(drivers.measure_device(cfg, "snapdragon"))
    assert res["status"].startswith("not measured")
    assert set(res["latency_tables"].values()) == {"not measured: no runner log of this "
                                                   "device"}
    assert not (paths.device_logs("snapdragon") / "c3d").exists()


def test_jetson_copy_carries_the_table_graphs(table_run):
    _, _, cfg, _, _ = table_run
    bundle = Paths(cfg).device_bundle
    cmds = drivers.jetson_commands(tiny_config(bundle.parent / "x", devices={
        "jetson_nano": {"ssh": "nano@h"}})["devices"], bundle, "r.jsonl")
    copied = {a.rsplit("/", 1)[-1] for a in cmds["copy"]}
    assert "--table-max-sessions 16" in cmds["run"][-1]
    files = layer_table.table_files(read_json(bundle / "manifest.json"))
    assert files and set(files) <= copied
    assert len([f for f in files if "_table_" in f]) == 9 * len(
        read_json(bundle / "manifest.json")["latency_tables"][0]["layers"])


@pytest.mark.slow      # two dynamo exports of a tiny C3D: ~15 s idle
def test_export_table_writes_every_graph_and_a_floor_that_keeps_the_other_work(tmp_path):
    pytest.importorskip("onnxruntime")
    from dance.devices.export import export_onnx, export_table, session

    model, clip = _network()
    aap = tiny_config(tmp_path)["aap"]
    export_onnx(model, clip, tmp_path / "c3d_dense.onnx", 15, ["logits"])
    # the floor graph is checked to keep every Conv outside the prunable ones
    entry = export_table(model, clip, "c3d", aap, 15, tmp_path)
    t = aap["latency_table"]
    points = len(t["frames"]) * len(t["channels"]) * len(t["features"])
    assert [len(layer["graphs"]) for layer in entry["layers"]] == [points + 1] * len(
        model.prunable_convs())
    assert entry["warmup"] == t["warmup"] and entry["repeats"] == t["repeats"]
    files = layer_table.table_files({"latency_tables": [entry]})
    assert sum((tmp_path / f).stat().st_size for f in files if "_table_" in f) < 2e6
    out = session(tmp_path / entry["floor"]).run(None, {"clip": clip.numpy()})[0]
    assert np.isfinite(out).all() and out.shape == (1, 5)
    with pytest.raises(DanceError, match="dropped work"):
        layer_table.check_floor_graph(tmp_path / entry["floor"], tmp_path / "c3d_dense.onnx",
                                      len(model.prunable_convs()) - 1)
