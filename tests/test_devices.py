"""On-device runs: the DANCE graph (controller + per-clip decisions as tensor ops) equals the
reference AAPNet; ONNX export runs in ONNX Runtime with the same outputs and decisions; the
device runner is Python 3.6, runs here without jtop, and its log is what the host ingests;
log/battery/benchmark parsers on real field formats, truncated and empty files; energy
integration; the three device cases; devices.csv."""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dance.aap.controller import Controller
from dance.aap.model import AAPNet
from dance.devices import device_runner, drivers, logs
from dance.devices.graph import GraphNet, StaticAdaptivePool3d, static_pools
from dance.errors import DeviceError
from dance.io import read_json, write_json
from dance.models import build_model

from conftest import REPO, tiny_config

RUNNER = REPO / "src" / "dance" / "devices" / "device_runner.py"


# --- the DANCE graph -------------------------------------------------------------------------


def _dance_net(name: str, seed: int = 0) -> tuple[AAPNet, torch.Tensor]:
    """A random backbone (O(1) logits) + a random controller whose thresholds vary per clip
    and prune frames, channels and features; and 6 clips."""
    torch.manual_seed(seed)
    model = build_model(name, 5, width=0.125, frames=8, size=32).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    probe = AAPNet(copy.deepcopy(model), None)
    a1 = []
    h = model.first_act.register_forward_hook(lambda m, a, o: a1.append(tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, 3, 8, 32, 32))
    h.remove()
    mask = [[s[1] >= 4, True, True] for s in probe.macs["in_shapes"]]
    ctrl = Controller(a1[0][0], a1[0][1], len(probe.names), hidden=64, tau_max=2.0,
                      tau_init=0.9, mask=mask,
                      active_layers=[i != 1 for i in range(len(probe.names))])
    with torch.no_grad():      # thresholds vary per clip but stay off τ_max: a saturated τ
        ctrl.net[2].weight.normal_(0.0, 0.5)   # can meet a share exactly (float ties)
    net = AAPNet(model, ctrl, channel_multiple=4).eval()
    clips = torch.randn(6, 3, 8, 32, 32) * torch.linspace(0.2, 2.0, 8)[None, None, :, None, None]
    return net, clips


def _reference(net: AAPNet, clips: torch.Tensor):
    logits, kept = [], []
    with torch.no_grad():
        for i in range(len(clips)):
            net.state.record = True
            logits.append(net(clips[i:i + 1]))
            kept.append(np.array([[float(m.sum()) for m in masks]
                                  for masks in net.state.records.values()]))
    net.state.record = False
    return torch.cat(logits).numpy(), kept


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_graph_equals_masked_reference_with_per_clip_decisions(name):
    net, clips = _dance_net(name)
    graph = GraphNet(net).eval()
    ref, kept = _reference(net, clips)
    with torch.no_grad():
        outs = [graph(clips[i:i + 1]) for i in range(len(clips))]
    got = torch.cat([o[0] for o in outs]).numpy()
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()
    for (_, k), want in zip(outs, kept, strict=True):
        assert np.array_equal(k.numpy(), want)
    full = np.array([[t, c, h * w] for c, t, h, w in net.macs["in_shapes"]], dtype=float)
    kept = np.stack(kept)                                  # [clips, layers, 3]
    assert len({k.tobytes() for k in kept}) > 1, "decisions must differ between clips"
    for dim in range(3):         # every dimension is pruned somewhere
        assert (kept[:, :, dim] < full[None, :, dim]).any(), f"dimension {dim} never pruned"
    assert (kept[:, 1] == full[1]).all()     # the layer the controller leaves alone


def test_static_adaptive_pools_equal_torch_for_uneven_and_upsampling_bins():
    gen = torch.Generator().manual_seed(0)
    for size, out in [((2, 7, 7), (1, 4, 4)), ((1, 2, 2), (1, 4, 4)), ((3, 5, 6), (1, 1, 1))]:
        x = torch.randn(2, 3, *size, generator=gen)
        for kind, pool in (("max", nn.AdaptiveMaxPool3d(out)), ("avg", nn.AdaptiveAvgPool3d(out))):
            torch.testing.assert_close(StaticAdaptivePool3d(kind, size, out)(x), pool(x))
    model = build_model("c3d", 5, width=0.125, frames=8, size=56).eval()
    x = torch.randn(1, 3, 8, 56, 56)
    with torch.no_grad():
        want = model(x)
        got = static_pools(copy.deepcopy(model), (3, 8, 56, 56))(x)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="fixed for inputs"):
        static_pools(copy.deepcopy(model), (3, 8, 56, 56))(torch.randn(1, 3, 8, 64, 64))


def _default_opset(tmp_path: Path) -> int:
    return tiny_config(tmp_path)["devices"]["opset"]


def _assert_declares_opset(path: Path, opset: int) -> None:
    """`path` declares a default-domain opset ≤ `opset`, the oldest IR version carrying it
    (what an old ONNX Runtime checks at load), and passes ONNX's full check."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    declared = {o.domain: o.version for o in model.opset_import}
    assert set(declared) <= {"", "ai.onnx"} and declared.get("", declared.get("ai.onnx")) <= opset
    assert model.ir_version == helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)


@pytest.fixture(scope="module")
def exported_c3d(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from dance.devices.export import export_onnx

    net, clips = _dance_net("c3d")
    folder = tmp_path_factory.mktemp("onnx")
    out = folder / "c3d_dance.onnx"
    export_onnx(GraphNet(net).eval(), clips[:1], out, _default_opset(folder), ["logits", "kept"])
    return net, clips, out


@pytest.mark.slow    # one dynamo export: ~25 s idle, minutes on a loaded 2-core machine
def test_onnx_runtime_runs_the_exported_dance_graph_like_pytorch(exported_c3d):
    import onnx

    from dance.devices.export import check_onnx

    net, clips, path = exported_c3d
    _assert_declares_opset(path, _default_opset(path.parent))
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"NonZero", "Gather", "Conv"} <= ops       # decisions and gathers are in the graph
    ref, kept = _reference(net, clips)
    check = check_onnx(path, clips.numpy(), ref, kept)
    assert check["same_decisions"] and check["same_top1"]
    assert check["max_abs_diff"] <= 1e-4 * check["logit_scale"]


@pytest.mark.slow     # the DANCE export of `exported_c3d`
@pytest.mark.skipif(not os.environ.get("DANCE_OLD_ORT_PYTHON"),
                    reason="set DANCE_OLD_ORT_PYTHON to a Python with numpy and an old "
                           "onnxruntime (e.g. 3.6 + 1.10.0, or 3.8 + 1.11.1)")
def test_device_runner_on_an_old_onnx_runtime_runs_the_exported_models(exported_c3d, tmp_path):
    """Opt-in: the runner, under the interpreter a Jetson Nano has (Python 3.6, ONNX
    Runtime ≤ 1.11), loads the exported dense and DANCE graphs and reproduces PyTorch."""
    from dance.devices.export import export_onnx

    net, clips, dance_path = exported_c3d
    dense = static_pools(net.dense_copy().eval(), net.input_shape)
    export_onnx(dense, clips[:1], tmp_path / "c3d_dense.onnx", _default_opset(tmp_path),
                ["logits"])
    (tmp_path / "c3d_dance_0.onnx").write_bytes(dance_path.read_bytes())
    ref, kept = _reference(net, clips)
    with torch.no_grad():
        dense_ref = torch.cat([dense(clips[i:i + 1]) for i in range(len(clips))]).numpy()
    np.save(tmp_path / "clips.npy", clips.numpy())
    np.savez(tmp_path / "reference.npz", **{"c3d:dense": dense_ref, "c3d:dance@0": ref,
                                            "c3d:dance@0#kept": np.stack(kept)})
    models = [{"name": n, "model": "c3d", "method": m, "file": f}
              for n, m, f in (("c3d:dense", "dense", "c3d_dense.onnx"),
                              ("c3d:dance@0", "dance@0", "c3d_dance_0.onnx"))]
    write_json(tmp_path / "manifest.json", {
        "format": "dance-device-bundle", "version": 1, "id": "old-ort", "models": models,
        "clips": "clips.npy", "reference": "reference.npz", "runner": "device_runner.py"})
    res = _run_runner(tmp_path, tmp_path / "run.jsonl", python=os.environ["DANCE_OLD_ORT_PYTHON"])
    assert res.returncode == 0, res.stderr
    log = logs.read_runner_log(tmp_path / "run.jsonl")
    rows = logs.summarise_runner_log(log, _bundle_reference(tmp_path), 1e-4)["models"]
    assert rows["c3d:dense"]["wrong"] is None and rows["c3d:dance@0"]["wrong"] is None
    assert rows["c3d:dance@0"]["clips_with_other_decisions"] == 0
    print("device runner on", log["header"]["python"], "onnxruntime", log["header"]["onnxruntime"])


def test_dense_export_declares_the_configured_opset_and_runs_like_pytorch(tmp_path):
    pytest.importorskip("onnxruntime")
    from dance.devices.export import check_onnx, export_onnx

    net, clips = _dance_net("c3d")
    dense = static_pools(net.dense_copy().eval(), net.input_shape)
    opset = _default_opset(tmp_path)
    path = tmp_path / "c3d_dense.onnx"
    export_onnx(dense, clips[:1], path, opset, ["logits"])
    _assert_declares_opset(path, opset)
    with torch.no_grad():
        ref = torch.cat([dense(clips[i:i + 1]) for i in range(len(clips))]).numpy()
    check = check_onnx(path, clips.numpy(), ref, None)
    assert check["same_top1"] and check["max_abs_diff"] <= 1e-5 * check["logit_scale"]


def _opset18_graph(pad: bool = False):
    """A small opset-18 / IR-10 graph with what the exporter writes and older runtimes
    refuse: ReduceMax with its axes as an input and noop_with_empty_axes, a Reshape with
    allowzero next to a -1, a Gemm without its optional C (optionally a Pad-18)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("ReduceMax", ["clip", "axes"], ["m"], keepdims=0,
                              noop_with_empty_axes=0),
             helper.make_node("Reshape", ["m", "shape"], ["r"], allowzero=1),
             helper.make_node("Gemm", ["r", "w"], ["g"], transB=1),
             helper.make_node("Relu", ["g"], ["logits"])]
    inits = [numpy_helper.from_array(np.array([2, 3, 4], dtype=np.int64), "axes"),
             numpy_helper.from_array(np.array([-1, 3], dtype=np.int64), "shape"),
             numpy_helper.from_array(rng.standard_normal((5, 3)).astype(np.float32), "w")]
    if pad:
        nodes.insert(0, helper.make_node("Pad", ["clip", "pads"], ["padded"]))
        nodes[1].input[0] = "padded"
        inits.append(numpy_helper.from_array(np.zeros(10, dtype=np.int64), "pads"))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("clip", TensorProto.FLOAT, [1, 3, 4, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.checker.check_model(model, full_check=True)
    return model


def test_lower_opset_repairs_what_old_runtimes_refuse_and_keeps_the_outputs(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from dance.devices.export import lower_opset
    from dance.errors import DanceError

    opset = _default_opset(tmp_path)
    original = _opset18_graph()
    lowered = lower_opset(onnx.ModelProto.FromString(original.SerializeToString()), opset)
    onnx.save(lowered, str(tmp_path / "low.onnx"))
    _assert_declares_opset(tmp_path / "low.onnx", opset)
    assert lowered.ir_version <= 8                    # ONNX Runtime 1.11 reads IR ≤ 8
    nodes = {n.op_type: n for n in lowered.graph.node}
    assert [a.name for a in nodes["ReduceMax"].attribute if a.name == "noop_with_empty_axes"] == []
    assert len(nodes["Gemm"].input) == 3
    assert [a.i for a in nodes["Reshape"].attribute if a.name == "allowzero"] in ([], [0])
    clip = np.random.default_rng(1).standard_normal((1, 3, 4, 8, 8)).astype(np.float32)
    outs = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
            .run(None, {"clip": clip})[0] for m in (original, lowered)]
    np.testing.assert_array_equal(outs[0], outs[1])
    with pytest.raises(DanceError, match=r"devices\.opset.*Pad"):
        lower_opset(_opset18_graph(pad=True), opset)   # no Pad-18 adapter: GraphNet avoids Pad


# --- the device runner ---------------------------------------------------------------------


def test_runner_is_python36_and_self_contained():
    source = RUNNER.read_text()
    tree = ast.parse(source, feature_version=(3, 6))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"argparse", "gc", "json", "os", "platform", "sys", "threading", "time",
                        "numpy", "onnxruntime", "jtop"}, imported
    assert "__future__" not in imported and "dataclasses" not in imported
    # walrus / positional-only parameters are rejected by the 3.6 grammar: prove the check bites
    with pytest.raises(SyntaxError):
        ast.parse("if (n := 1):\n    pass\n", feature_version=(3, 6))


def _tiny_bundle(folder: Path) -> Path:
    """A bundle of two small ONNX graphs (no torch export): dense logits = mean(clip)·W,
    'dance' adds a second output; reference logits from numpy."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    clips = rng.standard_normal((3, 3, 4, 8, 8)).astype(np.float32)
    weight = rng.standard_normal((3, 5)).astype(np.float32)
    models, refs = [], {}
    for method, extra in (("dense", False), ("dance@0", True)):
        nodes = [helper.make_node("ReduceMean", ["clip", "axes"], ["m"], keepdims=0),
                 helper.make_node("MatMul", ["m", "w"], ["logits"])]
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])]
        if extra:   # an exact "kept" output (a max, no float sum), checked on ingest
            nodes.append(helper.make_node("ReduceMax", ["clip", "axes"], ["kept"], keepdims=0))
            outputs.append(helper.make_tensor_value_info("kept", TensorProto.FLOAT, [1, 3]))
        graph = helper.make_graph(
            nodes, method, [helper.make_tensor_value_info("clip", TensorProto.FLOAT,
                                                          [1, 3, 4, 8, 8])], outputs,
            initializer=[numpy_helper.from_array(weight, "w"),
                         numpy_helper.from_array(np.array([2, 3, 4], dtype=np.int64), "axes")])
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        proto.ir_version = 8
        file = f"c3d_{method.replace('@', '_')}.onnx"
        onnx.save(proto, str(folder / file))
        name = f"c3d:{method}"
        refs[name] = clips.mean((2, 3, 4)) @ weight
        if extra:
            refs[f"{name}#kept"] = clips.max((2, 3, 4))[:, None, :]
        models.append({"name": name, "model": "c3d", "method": method, "file": file})
    np.save(folder / "clips.npy", clips)
    np.savez(folder / "reference.npz", **refs)
    write_json(folder / "manifest.json", {"format": "dance-device-bundle", "version": 1,
                                          "id": "test", "models": models, "clips": "clips.npy",
                                          "reference": "reference.npz",
                                          "runner": "device_runner.py"})
    return folder


def _bundle_reference(bundle: Path) -> dict[str, np.ndarray]:
    with np.load(bundle / "reference.npz") as ref:
        return {k: ref[k] for k in ref.files}


def _run_runner(bundle: Path, out: Path, *extra: str,
                python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([python, str(RUNNER), "--bundle", str(bundle), "--out",
                           str(out), "--warmup", "1", "--repeats", "2", "--window", "0.05",
                           "--device", "test", *extra],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def runner_log(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    bundle = _tiny_bundle(tmp_path_factory.mktemp("bundle"))
    out = bundle / "run.jsonl"
    res = _run_runner(bundle, out)
    assert res.returncode == 0, res.stderr
    return bundle, out


def test_runner_log_on_the_host_is_what_the_host_ingests(runner_log):
    _, path = runner_log
    log = logs.read_runner_log(path)
    h = log["header"]
    assert h["models"] == ["c3d:dense", "c3d:dance@0"] and h["clips"] == 3
    # jetson-stats is installed (a dependency), but no jtop service runs here: absent, said so.
    reason = h["power"]["reason"]
    assert h["power"]["source"] == "none"
    assert reason.startswith(("jetson-stats not installed", "jtop could not start")), reason
    assert len(log["call"]) == 2 * 3 * 2             # models × clips × repeats
    # interleaved with rotation: round k starts with model k mod 2
    firsts = [log["call"][i]["model"] for i in range(0, len(log["call"]), 2)]
    assert firsts[:2] == ["c3d:dense", "c3d:dance@0"]
    assert [w["model"] for w in log["window"]] == [None, "c3d:dense", "c3d:dance@0"]
    summary = logs.summarise_runner_log(log, _bundle_reference(runner_log[0]), 1e-3)["models"]
    assert summary["c3d:dense"]["speedup_vs_dense"] == 1.0
    assert summary["c3d:dance@0"]["wrong"] is None
    assert [summary[n]["max_abs_diff"] < 1e-5 for n in h["models"]] == [True, True]
    assert summary["c3d:dance@0"]["clips_with_other_decisions"] == 0
    assert summary["c3d:dance@0"]["providers"] == ["CPUExecutionProvider"]
    assert summary["c3d:dance@0"]["energy_j_per_clip"] is None
    assert summary["c3d:dance@0"]["status"] == "not measured: " + reason


def test_runner_refuses_to_run_without_jtop_when_power_is_required(runner_log):
    bundle, _ = runner_log
    res = _run_runner(bundle, bundle / "x.jsonl", "--power", "jtop")
    assert res.returncode != 0 and "jtop" in res.stderr


def test_truncated_and_empty_runner_logs_name_the_file(runner_log, tmp_path):
    _, path = runner_log
    lines = path.read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-1]) + "\n")            # no end record
    with pytest.raises(DeviceError, match=r"cut\.jsonl was cut short"):
        logs.read_runner_log(cut)
    half = tmp_path / "half.jsonl"
    half.write_text("\n".join(lines[:5]) + "\n" + lines[5][: len(lines[5]) // 2])
    with pytest.raises(DeviceError, match=r"half\.jsonl line 6 is not a complete JSON"):
        logs.read_runner_log(half)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DeviceError, match=r"empty\.jsonl is empty"):
        logs.read_runner_log(empty)
    with pytest.raises(DeviceError, match="missing.jsonl"):
        logs.read_runner_log(tmp_path / "missing.jsonl")


# --- jtop, energy, phone formats -----------------------------------------------------------

JTOP4_NANO = {   # jetson-stats 4.x on a Nano: POM_5V_IN moved to 'tot'; mV, mA, mW
    "rail": {"POM_5V_GPU": {"online": True, "type": "I2C", "status": "present", "volt": 5008,
                            "curr": 39, "warn": 32760, "crit": 32760, "power": 195, "avg": 195},
             "POM_5V_CPU": {"online": True, "type": "I2C", "status": "present", "volt": 5008,
                            "curr": 198, "warn": 32760, "crit": 32760, "power": 991, "avg": 947}},
    "tot": {"online": True, "type": "I2C", "status": "present", "volt": 5000, "curr": 620,
            "warn": 32760, "crit": 32760, "power": 3100, "avg": 3034, "name": "POM_5V_IN"},
}
JTOP3_NANO = ({"cur": 3100, "avg": 3034},     # jetson-stats 3.x: (total, rails), mW
              {"5V GPU": {"cur": 195, "avg": 195}, "5V CPU": {"cur": 991, "avg": 947}})


def test_jtop_power_reads_the_board_rail_of_both_jetson_stats_versions():
    mw, rail, rails = device_runner.jtop_power(JTOP4_NANO)
    assert (mw, rail) == (3100.0, "POM_5V_IN") and rails["POM_5V_CPU"] == 991.0
    mw3, rail3, rails3 = device_runner.jtop_power(JTOP3_NANO)
    assert (mw3, rail3) == (3100.0, "POM_5V_IN") and rails3 == {"5V GPU": 195.0, "5V CPU": 991.0}
    summed = {"rail": JTOP4_NANO["rail"], "tot": {"power": 1186, "avg": 1142}}   # no board rail
    with pytest.raises(ValueError, match="no board input rail"):
        device_runner.jtop_power(summed)
    with pytest.raises(ValueError, match="unrecognised"):
        device_runner.jtop_power({"power": 1})


def test_energy_integrates_samples_over_the_window_only():
    t = [0.0, 1.0, 2.0, 3.0, 4.0]
    w = [2.0, 2.0, 4.0, 4.0, 2.0]
    assert logs.integrate(t, w, 0.0, 1.0) == pytest.approx(2.0)
    assert logs.integrate(t, w, 1.0, 2.0) == pytest.approx(3.0)          # ramp 2→4
    assert logs.integrate(t, w, 1.5, 3.5) == pytest.approx(1.75 + 4.0 + 1.75)   # edges interpolated
    assert logs.integrate(t, w, 3.5, 5.0) is None                        # not covered
    res = logs.window_energy(t, w, {"start": 1.0, "end": 3.0, "calls": 14})
    assert res["energy_j"] == pytest.approx(7.0) and res["avg_power_w"] == pytest.approx(3.5)
    assert res["energy_j_per_clip"] == pytest.approx(0.5)


LOGITS = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])      # PyTorch's, two clips
KEPT = np.array([[[4, 8, 64]], [[2, 8, 32]]], dtype=np.float32)   # [clips, layers, 3]
REFERENCE = {"c3d:dense": LOGITS, "c3d:dance@0": LOGITS, "c3d:dance@0#kept": KEPT}


def test_runner_log_with_jtop_samples_gives_power_and_energy_per_clip(tmp_path):
    path = tmp_path / "jetson.jsonl"
    log = device_runner.Log(path)
    log.write({"type": "header", "format": device_runner.LOG_FORMAT,
               "version": device_runner.LOG_VERSION, "models": ["c3d:dense", "c3d:dance@0"],
               "power": {"source": "jtop", "nvpmodel": "MAXN", "jetson_clocks": "True"}})
    for name, secs in (("c3d:dense", 0.02), ("c3d:dance@0", 0.01)):
        log.write({"type": "check", "model": name, "logits": LOGITS.tolist(),
                   "kept": KEPT.tolist() if "dance" in name else None})
        for _ in range(4):
            log.write({"type": "call", "model": name, "clip": 0, "repeat": 0, "seconds": secs})
    for i in range(0, 31):                          # 10 Hz, 0..3 s: idle 2 W, then 5 W, 4 W
        t = i / 10
        mw = device_runner.jtop_power({**JTOP4_NANO, "tot": {
            **JTOP4_NANO["tot"], "power": 2000 if t < 1 else (5000 if t < 2 else 4000)}})[0]
        log.write({"type": "power", "t": t, "mw": mw, "rail": "POM_5V_IN", "rails": {}})
    log.write({"type": "window", "model": None, "idle": True, "start": 0.1, "end": 0.9,
               "calls": 0})
    log.write({"type": "window", "model": "c3d:dense", "idle": False, "start": 1.1, "end": 1.9,
               "calls": 40})
    log.write({"type": "window", "model": "c3d:dance@0", "idle": False, "start": 2.1,
               "end": 2.9, "calls": 80})
    log.write({"type": "end"})
    log.close()
    s = logs.summarise_runner_log(logs.read_runner_log(path), REFERENCE, 1e-3)["models"]
    assert s["c3d:dense"]["avg_power_w"] == pytest.approx(5.0)
    assert s["c3d:dense"]["energy_j_per_clip"] == pytest.approx(5.0 * 0.8 / 40)
    assert s["c3d:dance@0"]["energy_j_per_clip"] == pytest.approx(4.0 * 0.8 / 80)
    assert s["c3d:dance@0"]["idle_power_w"] == pytest.approx(2.0)
    assert s["c3d:dance@0"]["speedup_vs_dense"] == pytest.approx(2.0)


def _synthetic_log(path: Path, dance_logits=LOGITS, dance_kept=KEPT, power_times=None,
                   power_error=None) -> dict:
    """A Jetson log: dense 20 ms, DANCE 10 ms, 4 W samples at `power_times`, one window each."""
    log = device_runner.Log(path)
    log.write({"type": "header", "format": device_runner.LOG_FORMAT,
               "version": device_runner.LOG_VERSION, "models": ["c3d:dense", "c3d:dance@0"],
               "power": {"source": "jtop"}})
    for name, secs, logits, kept in (("c3d:dense", 0.02, LOGITS, None),
                                     ("c3d:dance@0", 0.01, dance_logits, dance_kept)):
        log.write({"type": "session", "model": name, "group": 0,
                   "providers": ["CPUExecutionProvider"] if "dense" in name
                   else ["CUDAExecutionProvider", "CPUExecutionProvider"]})
        log.write({"type": "check", "model": name, "logits": np.asarray(logits).tolist(),
                   "kept": None if kept is None else np.asarray(kept).tolist()})
        for _ in range(4):
            log.write({"type": "call", "model": name, "clip": 0, "repeat": 0, "group": 0,
                       "seconds": secs})
    for t in power_times if power_times is not None else np.arange(0, 31) / 10:
        log.write({"type": "power", "t": float(t), "mw": 4000.0, "rail": "POM_5V_IN",
                   "rails": {}})
    log.write({"type": "window", "model": "c3d:dense", "idle": False, "start": 0.1, "end": 1.4,
               "calls": 10})
    log.write({"type": "window", "model": "c3d:dance@0", "idle": False, "start": 1.6,
               "end": 2.9, "calls": 20})
    log.write({"type": "end", "power_error": power_error})
    log.close()
    return logs.summarise_runner_log(logs.read_runner_log(path), REFERENCE, 1e-3)["models"]


def test_a_device_that_computes_other_results_is_measured_wrong_with_no_speedup(tmp_path):
    ok = _synthetic_log(tmp_path / "ok.jsonl")
    assert ok["c3d:dance@0"]["wrong"] is None
    assert ok["c3d:dance@0"]["speedup_vs_dense"] == pytest.approx(2.0)
    # per model, the providers it really ran on (a CUDA -> CPU fallback shows per model)
    assert ok["c3d:dense"]["providers"] == ["CPUExecutionProvider"]
    assert ok["c3d:dance@0"]["providers"][0] == "CUDAExecutionProvider"
    off = _synthetic_log(tmp_path / "off.jsonl", dance_logits=LOGITS + 0.01)
    assert "logits differ from PyTorch's by 0.01" in off["c3d:dance@0"]["wrong"]
    assert off["c3d:dance@0"]["max_abs_diff"] == pytest.approx(0.01)
    assert off["c3d:dance@0"]["speedup_vs_dense"] is None
    close = _synthetic_log(tmp_path / "close.jsonl", dance_logits=LOGITS + 1e-4)
    assert close["c3d:dance@0"]["wrong"] is None                     # within 1e-3 x scale 3
    kept = KEPT.copy()
    kept[1, 0, 0] = 3
    other = _synthetic_log(tmp_path / "kept.jsonl", dance_kept=kept)
    assert other["c3d:dance@0"]["wrong"] == "other pruning decisions on 1 of 2 clips"
    assert other["c3d:dance@0"]["clips_with_other_decisions"] == 1
    assert other["c3d:dance@0"]["speedup_vs_dense"] is None
    rows = __import__("dance.devices.summary", fromlist=["x"]).device_rows(
        {"device": "jetson_nano", "status": "measured", "models": other}, [])
    dance = next(r for r in rows if r["method"] == "dance@0")
    assert dance["status"] == "measured, wrong results" and dance["speedup_vs_dense"] is None
    assert dance["results_check"].startswith("wrong: other pruning decisions")
    assert dance["providers"] == "CUDAExecutionProvider,CPUExecutionProvider"


def test_a_gap_in_the_power_samples_or_a_failed_sampler_gives_no_energy(tmp_path):
    whole = _synthetic_log(tmp_path / "whole.jsonl")
    assert whole["c3d:dance@0"]["energy_j_per_clip"] == pytest.approx(4.0 * 1.3 / 20)
    times = [t for t in np.arange(0, 31) / 10 if not 2.0 < t < 2.6]     # 0.6 s gap at 10 Hz
    gap = _synthetic_log(tmp_path / "gap.jsonl", power_times=times)
    assert gap["c3d:dense"]["status"] == "measured"
    assert gap["c3d:dance@0"]["energy_j_per_clip"] is None
    assert "a gap of 0.600 s between power samples" in gap["c3d:dance@0"]["status"]
    failed = _synthetic_log(tmp_path / "failed.jsonl",
                            power_error="group 0: jtop stopped delivering samples at t=2.0 s")
    assert failed["c3d:dense"]["energy_j_per_clip"] is None
    assert "power sampling failed (group 0: jtop stopped" in failed["c3d:dense"]["status"]


class _FakeJetson:
    """A jtop client: `updates` power readings, then ok() turns False (a timeout)."""

    def __init__(self, updates: int):
        self.updates = updates

    def ok(self):
        if self.updates <= 0:
            return False
        self.updates -= 1
        __import__("time").sleep(0.01)
        return True

    power = JTOP4_NANO


def test_sampler_reports_a_jtop_that_stops_and_measures_its_interval(tmp_path):
    log = device_runner.Log(tmp_path / "s.jsonl")
    sampler = device_runner.JtopSampler(_FakeJetson(5), log)
    sampler.start()
    sampler.join(5)
    stats = sampler.stats()
    log.close()
    assert stats["samples"] == 5 and "jtop stopped delivering samples" in stats["error"]
    assert 0.005 < stats["interval_measured_s"] < 0.5
    assert stats["max_gap_s"] >= stats["interval_measured_s"]


class _FakeORT:
    """onnxruntime stand-in that counts live sessions and whether jtop is up when timed."""

    __version__ = "fake"
    live = peak = 0
    jtop_up = False
    timed_under_jtop = 0
    timing = False

    class SessionOptions:
        intra_op_num_threads = 0

    @staticmethod
    def get_available_providers():
        return ["CPUExecutionProvider"]

    class InferenceSession:
        def __init__(self, path, sess_options=None, providers=None):
            _FakeORT.live += 1
            _FakeORT.peak = max(_FakeORT.peak, _FakeORT.live)
            self.dance = "dance" in path

        def __del__(self):
            _FakeORT.live -= 1

        def get_providers(self):
            return ["CPUExecutionProvider"]

        def run(self, _, feed):
            if _FakeORT.timing and _FakeORT.jtop_up:
                _FakeORT.timed_under_jtop += 1
            out = [np.zeros((1, 5), np.float32)]
            return out + [np.ones((1, 3), np.float32)] if self.dance else out


class _FakeJtopClient(_FakeJetson):
    interval = 0.5

    def __init__(self, interval=None):
        super().__init__(updates=3)

    def start(self):
        _FakeORT.jtop_up = True

    def close(self):
        _FakeORT.jtop_up = False

    nvpmodel = "MAXN"
    jetson_clocks = True
    board = {}


def test_runner_bounds_live_sessions_and_times_latency_without_jtop(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", _FakeORT)
    monkeypatch.setitem(sys.modules, "jtop", type(sys)("jtop"))
    sys.modules["jtop"].jtop = _FakeJtopClient
    real_time_group = device_runner.time_group

    def timed(*a, **kw):
        _FakeORT.timing = True
        try:
            return real_time_group(*a, **kw)
        finally:
            _FakeORT.timing = False

    monkeypatch.setattr(device_runner, "time_group", timed)
    bundle = tmp_path / "b"
    bundle.mkdir()
    models = [{"name": f"c3d:{m}", "model": "c3d", "method": m, "file": f"{m}.onnx"}
              for m in ("dense", "dance@0", "dance@1", "dance@2")]
    np.save(bundle / "clips.npy", np.zeros((2, 3, 2, 4, 4), np.float32))
    write_json(bundle / "manifest.json", {"id": "t", "models": models, "clips": "clips.npy"})
    out = tmp_path / "run.jsonl"
    _FakeORT.live = _FakeORT.peak = _FakeORT.timed_under_jtop = 0
    device_runner.main(["--bundle", str(bundle), "--out", str(out), "--warmup", "1",
                        "--repeats", "1", "--window", "0.1", "--power", "jtop",
                        "--max-sessions", "2"])
    log = logs.read_runner_log(out)
    assert _FakeORT.peak == 2                          # never more than --max-sessions alive
    assert log["header"]["groups"] == [["c3d:dense", "c3d:dance@0"],
                                       ["c3d:dense", "c3d:dance@1"],
                                       ["c3d:dense", "c3d:dance@2"]]
    assert _FakeORT.timed_under_jtop == 0              # no jtop client while timing
    assert [r["model"] for r in log["check"]] == [m["name"] for m in models]   # each once
    windows = [w["model"] for w in log["window"]]
    assert windows == [None] + [m["name"] for m in models]      # idle once, each model once
    assert len(log["sampling"]) == 3 and all(r["samples"] == 3 for r in log["sampling"])
    assert "jtop stopped delivering" in log["end"]["power_error"]   # the fake stops after 3


def test_plan_groups_keeps_dense_beside_each_model_within_the_bound():
    models = [{"name": f"{b}:{m}", "model": b, "method": m}
              for b in ("c3d", "r3d18") for m in ("dense", "dance@0", "dance@1", "dance@2")]
    assert device_runner.plan_groups(models, 0) == [[m["name"] for m in models]]
    three = device_runner.plan_groups(models, 3)
    assert three == [["c3d:dense", "c3d:dance@0", "c3d:dance@1"], ["c3d:dense", "c3d:dance@2"],
                     ["r3d18:dense", "r3d18:dance@0", "r3d18:dance@1"],
                     ["r3d18:dense", "r3d18:dance@2"]]
    assert all(len(g) == 1 for g in device_runner.plan_groups(models, 1))


PERF_TEST_OUTPUT = """Setting intra_op_num_threads to 4
Session creation time cost: 0.217932 s
First inference time cost: 196 ms
Total inference time cost: 0.49481 s
Total inference requests: 5
Average inference time cost: 98.961997 ms
Total inference run time: 0.494854 s
Number of inferences per second: 10.104
Avg CPU usage: 11 %
Peak working set size: 271122432 bytes
Min Latency: 0.0958204 s
Max Latency: 0.101519 s
P50 Latency: 0.0995086 s
P90 Latency: 0.101519 s
P95 Latency: 0.101519 s
P99 Latency: 0.101519 s
P999 Latency: 0.101519 s
"""


def test_phone_parsers_read_real_formats_and_refuse_broken_files(tmp_path):
    perf = tmp_path / "perf.txt"
    perf.write_text(PERF_TEST_OUTPUT)
    got = logs.parse_perf_test(perf)
    assert got["requests"] == 5 and got["p50_s"] == pytest.approx(0.0995086)
    assert got["average_ms"] == pytest.approx(98.961997)
    perf.write_text(PERF_TEST_OUTPUT[:200])                 # cut before the latency lines
    with pytest.raises(DeviceError, match=r"perf\.txt has no"):
        logs.parse_perf_test(perf)
    # sysfs: current_now in µA (negative while discharging on many phones), voltage_now in µV
    bat = tmp_path / "power.txt"
    bat.write_text("100.00 -1000000 4000000 Discharging\n100.50 -500000 4000000 Discharging\n")
    b = logs.read_battery(bat)
    assert b["watts"] == pytest.approx([4.0, 2.0]) and b["status"] == ["Discharging"] * 2
    bat.write_text("100.00 -1000000 4000 Discharging\n")           # a driver reporting mV
    with pytest.raises(DeviceError, match=r"power\.txt: median voltage_now 4000 is 0\.004 V"):
        logs.read_battery(bat)
    bat.write_text("100.00 -500 4000000 Discharging\n")            # a driver reporting mA
    with pytest.raises(DeviceError, match=r"power\.txt: median \|current_now\| 500 is 0\.5 mA"):
        logs.read_battery(bat)
    bat.write_text("100.00 -1000000\n")
    with pytest.raises(DeviceError, match=r"power\.txt line 1"):
        logs.read_battery(bat)
    bat.write_text("")
    with pytest.raises(DeviceError, match=r"power\.txt are empty"):
        logs.read_battery(bat)
    win = tmp_path / "windows.txt"
    win.write_text("idle 1.0 2.0\nc3d_dense 2.5")
    with pytest.raises(DeviceError, match=r"windows\.txt line 2"):
        logs.read_windows(win)


def _phone_run(folder: Path, status: str) -> None:
    folder.mkdir(parents=True)
    names = ["c3d_dense", "c3d_dance_0"]
    write_json(folder / "header.json", {
        "models": names, "bundle": [{"name": "c3d:dense"}, {"name": "c3d:dance@0"}]})
    (folder / "windows.txt").write_text("idle 0.0 1.0\nc3d_dense 1.0 2.9\nc3d_dance_0 3.1 4.0\n")
    # 8 W while the dense run creates its session and warms up (1.0-2.3 s), 4 W while its
    # timed requests run (its last 0.494854 s, up to 2.9 s), then 2 W for DANCE
    amps = lambda i: 2000000 if 10 <= i <= 23 else (1000000 if i <= 30 else 500000)  # noqa: E731
    samples = [f"{i / 10:.2f} -{amps(i)} 4000000 {status}" for i in range(0, 41)]
    (folder / "power.txt").write_text("\n".join(samples) + "\n")
    (folder / "perf_c3d_dense.txt").write_text(PERF_TEST_OUTPUT)
    (folder / "perf_c3d_dance_0.txt").write_text(
        PERF_TEST_OUTPUT.replace("P50 Latency: 0.0995086", "P50 Latency: 0.0497543"))


def test_snapdragon_ingest_needs_discharging_for_energy(tmp_path):
    _phone_run(tmp_path / "a" / "run-1", "Discharging")
    res = drivers.ingest_snapdragon(tmp_path / "a")
    dense, dance = res["models"]["c3d:dense"], res["models"]["c3d:dance@0"]
    assert dense["median_ms"] == pytest.approx(99.5086)
    assert dance["speedup_vs_dense"] == pytest.approx(2.0)
    # only the timed requests count: 4 W over the report's 0.494854 s run time, 5 requests
    assert dense["energy_j_per_clip"] == pytest.approx(4.0 * 0.494854 / 5)
    assert dense["avg_power_w"] == pytest.approx(4.0)
    assert dance["avg_power_w"] == pytest.approx(2.0)
    _phone_run(tmp_path / "b" / "run-1", "Charging")
    res = drivers.ingest_snapdragon(tmp_path / "b")
    assert res["models"]["c3d:dense"]["energy_j_per_clip"] is None
    assert "Charging" in res["models"]["c3d:dense"]["status"]
    assert res["models"]["c3d:dense"]["median_ms"] == pytest.approx(99.5086)   # latency stays


# --- device rules: the three cases, commands, summary -------------------------------------


def test_device_not_configured_without_logs_is_not_measured(tmp_path):
    cfg = tiny_config(tmp_path)
    for device in drivers.DEVICES:
        res = read_json(drivers.measure_device(cfg, device))
        assert res["status"] == "not measured: no device configured"
        assert res["paper_speedup"] == drivers.PAPER_SPEEDUP[device]


def test_hand_placed_and_driven_jetson_logs_are_ingested(tmp_path, runner_log, monkeypatch):
    import shutil

    from dance.paths import Paths

    cfg = tiny_config(tmp_path)
    shutil.copytree(runner_log[0], Paths(cfg).device_bundle)
    folder = Paths(cfg).device_logs("jetson_nano")
    folder.mkdir(parents=True)
    (folder / "run-by-hand.jsonl").write_text(runner_log[1].read_text())
    res = read_json(drivers.measure_device(cfg, "jetson_nano"))
    assert res["status"] == "measured" and res["source"] == "logs placed by hand"
    assert set(res["models"]) == {"c3d:dense", "c3d:dance@0"}
    assert res["models"]["c3d:dance@0"]["wrong"] is None
    other = read_json(Paths(cfg).device_bundle / "manifest.json")
    write_json(Paths(cfg).device_bundle / "manifest.json", {**other, "id": "another"})
    with pytest.raises(DeviceError, match=r"run from bundle test, the bundle here is another"):
        drivers.measure_device(cfg, "jetson_nano")

    cfg = tiny_config(tmp_path / "ssh", devices={"jetson_nano": {"ssh": "nano@host"}})
    calls = []

    def fake_drive(devices, paths):
        calls.append(devices["jetson_nano"]["ssh"])
        out = paths.device_logs("jetson_nano") / "run-x.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(runner_log[1].read_text())
        return out

    shutil.copytree(runner_log[0], Paths(cfg).device_bundle)
    monkeypatch.setattr(drivers, "drive_jetson", fake_drive)
    res = read_json(drivers.measure_device(cfg, "jetson_nano"))
    assert calls == ["nano@host"] and res["source"] == "driven from this host"


def test_jetson_commands_copy_the_bundle_run_the_runner_and_fetch_the_log(tmp_path,
                                                                         runner_log):
    bundle, _ = runner_log
    cfg = tiny_config(tmp_path, devices={"jetson_nano": {"ssh": "nano@10.0.0.2",
                                                         "remote_dir": "/home/nano/d"}})
    cmds = drivers.jetson_commands(cfg["devices"], bundle, "run-1.jsonl")
    assert cmds["copy"][0] == "scp" and cmds["copy"][-1] == "nano@10.0.0.2:/home/nano/d/"
    copied = {Path(a).name for a in cmds["copy"][1:-1] if not a.startswith("-")}
    assert {"manifest.json", "clips.npy", "reference.npz", "device_runner.py",
            "c3d_dense.onnx", "c3d_dance_0.onnx"} <= copied
    run = cmds["run"][-1]
    assert run.startswith("cd /home/nano/d && python3 device_runner.py --bundle . --out "
                          "run-1.jsonl") and "--power auto" in run
    assert "--max-sessions 2" in run
    assert cmds["fetch"][-1] == "nano@10.0.0.2:/home/nano/d/run-1.jsonl"


def test_phone_script_samples_battery_and_runs_every_model(tmp_path):
    cfg = tiny_config(tmp_path)
    script = drivers.phone_script(cfg["devices"], ["c3d_dense", "c3d_dance_0"])
    assert "/sys/class/power_supply/battery" in script and "current_now" in script
    assert script.count("./benchmark -e cpu -m times -r 100 -x 0") == 2
    assert "perf_c3d_dance_0.txt" in script and "kill $SAMPLER" in script
    res = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert res.returncode == 0, res.stderr


def test_devices_summary_has_host_rows_and_not_measured_devices(tmp_path, runner_log):
    from dance.devices.onnx_bench import bench_onnx
    from dance.devices.summary import COLUMNS, write_summary
    from dance.paths import Paths

    bundle, _ = runner_log
    cfg = tiny_config(tmp_path, bench={"warmup": 1, "repeats": 1, "threads": 1,
                                       "energy_window_s": 0.01})
    paths = Paths(cfg)
    paths.device_bundle.parent.mkdir(parents=True)
    import shutil

    shutil.copytree(bundle, paths.device_bundle)
    bench_onnx(cfg)
    write_json(paths.onnx_export_check, {"models": {"c3d:dense": {
        "max_abs_diff": 2e-7, "same_top1": True, "clips_with_other_decisions": None}}})
    for device in drivers.DEVICES:
        drivers.measure_device(cfg, device)
    import csv

    with open(write_summary(cfg), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == COLUMNS
    host = [r for r in rows if r["device"] == "host_cpu"]
    assert [r["method"] for r in host] == ["dense", "dance@0"]
    assert all(r["status"] == "measured" and float(r["latency_median_ms"]) > 0 for r in host)
    assert float(host[0]["speedup_vs_dense"]) == 1.0
    assert [r["results_check"] for r in host] == ["as PyTorch (export check)",
                                                  "not checked: not in the export check"]
    assert host[0]["max_abs_diff"] == "2e-07"
    nano = [r for r in rows if r["device"] == "jetson_nano"]
    assert [r["status"] for r in nano] == ["not measured: no device configured"] * 2
    assert nano[0]["latency_median_ms"] == "" and nano[1]["paper_speedup"] == "1.37"
    phone = [r for r in rows if r["device"] == "snapdragon" and r["method"] == "dance@0"]
    assert phone[0]["paper_speedup"] == "2.22" and "paper-reported" in phone[0]["paper_speedup_label"]
    assert json.loads(json.dumps(rows))  # plain strings only
