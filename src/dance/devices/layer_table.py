"""A device's per-layer latency table: the graphs a bundle carries for it, and its ingest.

The host's table (:mod:`dance.aap.latency_table`) times each prunable conv's pruned execution
at every grid point of ``aap.latency_table``. A device runs ONNX graphs, not that Python
path, so the bundle (``devices.latency_table``) holds, per model and prunable layer, one
single-conv graph per grid point — the static-shape conv a device runs for that point's
fixed decision (:func:`dance.aap.latency_table.grid_point`: the same kept frames, channels
rounded to ``aap.channel_multiple`` and square feature blob) — plus the layer's dense conv:

* channels — the conv reads the kept channels only (its weight sliced to them);
* frames — a dropped frame is zero, so only the outputs that read a kept frame are computed:
  the conv runs over the input frames those outputs read (the kept run and the zero frames
  of its kernel reach), without temporal padding (:func:`dance.aap.execute.crop_window`
  along time, the window the host's frame run computes);
* features — likewise over the feature window's input rows and columns (the host's
  :func:`~dance.aap.execute.crop_window`), or over the whole map, with its padding, where
  the host convolves the whole map (window input area > ``crop_max`` of the map's).

Not in the graph: the host path's mask product on the window, the placing of the window's
output into the full map, and the decision itself (profiles, keep rules); the table is the
conv's work at the kept sizes. Weights and bias are ``ConstantOfShape`` nodes (ONNX Runtime
folds them into initializers at load), so the bundle stays small; latency does not depend
on their values, as on the host. The runner also times the bundle's dense network beside a
*floor* graph (the dense network with every prunable conv's output replaced by zeros):
``network_dense_ms`` and ``network_floor_ms`` of the device's table. A bundle without a
floor graph gives ``network_floor_ms`` = the dense network − the sum of the layers' dense
convs, both timed on the device (``floor_source`` says which).

Ingest (:func:`write_device_tables`): the newest runner log of a device with ``layer_call``
records → ``Paths.device_latency_table(device, model)``, the host table's CSV columns, and a
``.json`` of its conditions; :meth:`dance.aap.latency_table.LatencyModel.load` reads it, so
``aap.latency_table_file`` trains a controller for that device. A device without such a
log writes no table (and a table of an older log is removed): "not measured".
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dance.aap.execute import PrunedConv, crop_window
from dance.aap.latency_table import (
    COLUMNS,
    dense_macs,
    grid_key,
    grid_point,
    site_inputs,
    table_grid,
)
from dance.devices import logs
from dance.errors import DanceError, DeviceError
from dance.io import read_json, write_csv, write_json
from dance.measure.stats import summarise
from dance.paths import Paths

WEIGHT_VALUE = 0.01           # every weight and bias of a table graph (values do not matter)
INPUT = "x"


def static_conv(conv: nn.Module, in_shape: tuple[int, int, int, int], decision: tuple,
                crop_max: float) -> dict[str, Any]:
    """The static-shape conv a device runs for `decision` (module docstring) on site input
    `in_shape` (C, T, H, W): ``input`` [1, C', T', H', W'], ``pads`` (ONNX order),
    ``output`` shape, and where they lie in the full conv: ``in_start`` (first input
    frame / row / column read, < 0 inside the zero padding) and ``out_start`` (first output
    frame / row / column computed)."""
    c, _, _, _ = in_shape
    frames, channels, features = decision
    kernel = [int(k) for k in conv.kernel_size]
    stride = [int(s) for s in conv.stride]
    padding = [int(p) for p in conv.padding]
    # per axis (time, rows, columns): input size, padding, first input read, first output
    axes = [[n, p, -p, 0] for n, p in zip(in_shape[1:], padding, strict=True)]
    if frames is not None:
        keep = np.zeros((in_shape[1], 1), dtype=bool)
        keep[list(frames)] = True
        win = crop_window(keep, (kernel[0], 1), (stride[0], 1), (padding[0], 0))
        if win is None:
            raise DanceError(f"grid decision keeps frames {list(frames)} that no output of "
                             f"{conv} reads")
        axes[0] = [win.in_rows[1] - win.in_rows[0] + 1, 0, win.in_rows[0], win.rows[0]]
    if features is not None:
        h, w = in_shape[2:]
        win = crop_window(features.numpy() > 0, kernel[1:], stride[1:], padding[1:])
        if win is not None and win.in_area <= crop_max * h * w:
            axes[1] = [win.in_rows[1] - win.in_rows[0] + 1, 0, win.in_rows[0], win.rows[0]]
            axes[2] = [win.in_cols[1] - win.in_cols[0] + 1, 0, win.in_cols[0], win.cols[0]]
    size = [(n + 2 * p - k) // s + 1
            for (n, p, _, _), k, s in zip(axes, kernel, stride, strict=True)]
    return {"input": [1, c if channels is None else len(channels), *(a[0] for a in axes)],
            "pads": [a[1] for a in axes] * 2, "output": [1, int(conv.out_channels), *size],
            "in_start": [a[2] for a in axes], "out_start": [a[3] for a in axes]}


def conv_graph(conv: nn.Module, shape: dict[str, Any], opset: int):
    """The ONNX model (default-domain `opset`) of one static conv (:func:`static_conv`):
    input ``x``, output ``y``; weight [Cout, C', kT, kH, kW] and bias are constants."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    cout = int(conv.out_channels)
    kernel = [int(k) for k in conv.kernel_size]
    wshape = [cout, shape["input"][1], *kernel]
    consts = [numpy_helper.from_array(np.array(wshape, np.int64), "w_shape"),
              numpy_helper.from_array(np.array([cout], np.int64), "b_shape")]
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [WEIGHT_VALUE])
    nodes = [helper.make_node("ConstantOfShape", ["w_shape"], ["w"], value=value),
             helper.make_node("ConstantOfShape", ["b_shape"], ["b"], value=value),
             helper.make_node("Conv", [INPUT, "w", "b"], ["y"], kernel_shape=kernel,
                              strides=[int(s) for s in conv.stride], pads=shape["pads"])]
    graph = helper.make_graph(
        nodes, "layer", [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT,
                                                       shape["input"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape["output"])],
        initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="dance.devices.layer_table")
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    return model


def graph_file(model_name: str, index: int, key: str) -> str:
    """File name of a table graph (``c3d_table_03_f0.5_c1_s0.25.onnx``)."""
    if key == "dense":
        return f"{model_name}_table_{index:02d}_dense.onnx"
    fr, ch, fe = key.split(",")
    return f"{model_name}_table_{index:02d}_f{fr}_c{ch}_s{fe}.onnx"


@torch.no_grad()
def export_layer_graphs(model: nn.Module, clip: Tensor, model_name: str, table: dict,
                        channel_multiple: int, min_frames: int, opset: int, out: Path,
                        ) -> list[dict[str, Any]]:
    """Write every table graph of `model` (the exported dense network; its site inputs from
    one pass of `clip`) into `out`; returns the manifest's layers: per prunable conv its
    site input, dense MACs and graphs (key, file, input shape, shares, kept counts, MACs).
    `table`: ``aap.latency_table``."""
    import onnx

    grid = table_grid(table)
    inputs = site_inputs(model, clip)
    layers = []
    for index, (name, _, conv) in enumerate(model.prunable_convs()):
        in_shape = tuple(int(s) for s in inputs[name].shape[1:])
        crop_max = PrunedConv(conv).crop_max
        graphs = []
        for key, shares in [("dense", None)] + [(grid_key(s), s) for s in grid]:
            point = (grid_point(conv, in_shape, shares, channel_multiple, min_frames)
                     if shares is not None else None)
            shape = static_conv(conv, in_shape, point["decision"] if point else
                                (None, None, None), crop_max)
            file = graph_file(model_name, index, key)
            onnx.save(conv_graph(conv, shape, opset), str(out / file))
            entry = {"key": key, "file": file, "input": shape["input"],
                     "output": shape["output"]}
            if point is not None:
                entry.update(shares=list(shares), kept_frames=point["kept_frames"],
                             kept_channels=point["kept_channels"],
                             kept_features=point["kept_features"], macs=point["macs"])
            graphs.append(entry)
        layers.append({"layer": name, "index": index, "in_shape": list(in_shape),
                       "dense_macs": dense_macs(conv, in_shape), "graphs": graphs})
    return layers


class ZeroConv(nn.Module):
    """Stands in for a prunable conv in the floor graph: zeros of the conv's output shape
    that still depend on the input (``+ 0 · x[first]``), so that an ONNX optimizer keeps
    everything before it (a constant output would let it drop the work that feeds it)."""

    def __init__(self, conv: nn.Module, x: Tensor) -> None:
        super().__init__()
        self.register_buffer("zeros", torch.zeros_like(conv(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.zeros + x.reshape(-1)[:1].reshape(1, 1, 1, 1, 1) * 0.0


@torch.no_grad()
def floor_network(model: nn.Module, clip: Tensor) -> nn.Module:
    """A copy of `model` with every prunable conv a :class:`ZeroConv` (the device's floor:
    the time outside the prunable convs, which no pruning removes)."""
    floor = copy.deepcopy(model).eval()
    inputs = site_inputs(floor, clip)
    for name, _, conv in floor.prunable_convs():
        floor.set_submodule(name, ZeroConv(conv, inputs[name]))
    return floor


def check_floor_graph(path: Path, dense_path: Path, prunable: int) -> None:
    """DanceError unless the floor graph at `path` has the dense graph's Conv nodes less
    the `prunable` ones (an optimizer that dropped the work before a skipped conv would
    give a floor too low)."""
    import onnx

    def convs(p: Path) -> int:
        return sum(n.op_type == "Conv" for n in onnx.load(str(p)).graph.node)

    if convs(path) != convs(dense_path) - prunable:
        raise DanceError(f"floor graph {path.name} has {convs(path)} Conv nodes, the dense "
                         f"graph {convs(dense_path)} with {prunable} prunable: the export "
                         f"dropped work that the floor must keep")


def table_files(manifest: dict[str, Any]) -> list[str]:
    """The files of a bundle's per-layer latency tables (floor and layer graphs)."""
    return [f for t in manifest.get("latency_tables", []) for f in
            ([t["floor"]] if t.get("floor") else []) + [g["file"] for layer in t["layers"]
                                                        for g in layer["graphs"]]]


# --- ingest ---------------------------------------------------------------------------------

def _ms(values: list[float]) -> dict[str, float]:
    s = summarise(values)
    return {"median": s["median"] * 1e3, "p25": s["p25"] * 1e3, "p75": s["p75"] * 1e3,
            "n": s["n"]}


def device_tables(log: dict[str, Any], manifest: dict[str, Any],
                  ) -> dict[str, dict[str, Any]]:
    """Per model of the bundle's ``latency_tables`` that the log timed: ``{"rows": [...]
    (the host table's COLUMNS), "conditions": {...}}``; empty when the log has no
    ``layer_call`` records (an older runner, or ``--latency-tables skip``)."""
    calls: dict[tuple[str, str | None, str], list[float]] = {}
    for rec in log.get("layer_call", []):
        calls.setdefault((rec["model"], rec["layer"], rec["key"]), []).append(
            float(rec["seconds"]))
    header = log["header"]
    out = {}
    for table in manifest.get("latency_tables", []):
        model = table["model"]
        if not any(k[0] == model for k in calls):
            continue
        rows, layer_dense = [], 0.0
        for layer in table["layers"]:
            name = layer["layer"]
            dense = calls.get((model, name, "dense"))
            if not dense:
                raise DeviceError(f"device log {log['path']} has no timed call of {model} "
                                  f"{name}'s dense conv")
            d = _ms(dense)
            layer_dense += d["median"]
            c, t, h, w = layer["in_shape"]
            for g in layer["graphs"]:
                if g["key"] == "dense":
                    continue
                got = calls.get((model, name, g["key"]))
                if not got:
                    raise DeviceError(f"device log {log['path']} has no timed call of "
                                      f"{model} {name} at grid point {g['key']}")
                s = _ms(got)
                fr, ch, fe = g["shares"]
                rows.append({
                    "model": model, "layer": name, "index": layer["index"], "in_channels": c,
                    "in_frames": t, "height": h, "width": w, "frames_share": fr,
                    "channels_share": ch, "features_share": fe,
                    "kept_frames": g["kept_frames"], "kept_channels": g["kept_channels"],
                    "kept_features": g["kept_features"], "macs": g["macs"],
                    "dense_macs": layer["dense_macs"], "median_ms": s["median"],
                    "p25_ms": s["p25"], "p75_ms": s["p75"], "dense_median_ms": d["median"],
                    "ratio_to_dense": s["median"] / d["median"], "n": s["n"]})
        net = calls.get((model, None, "dense"))
        if not net:
            raise DeviceError(f"device log {log['path']} has no timed call of {model}'s "
                              f"dense network in its latency table")
        floor = calls.get((model, None, "floor"))
        dense_ms = _ms(net)["median"]
        if floor:
            floor_ms, source = _ms(floor)["median"], "floor graph timed on the device"
        else:
            floor_ms = dense_ms - layer_dense
            source = ("the bundle has no floor graph: the device's dense network minus the sum "
                      "of its layers' dense convs")
        info = next((r for r in log.get("table", []) if r["model"] == model), {})
        providers = sorted({p for r in log.get("layer_session", []) if r["model"] == model
                            for p in r.get("providers") or []})
        out[model] = {"rows": rows, "conditions": {
            "model": model, "device": header.get("device"), "measured_on": "device",
            "log": log["path"], "bundle": header.get("bundle"),
            "clip": manifest.get("clip_shape"), "threads": header.get("threads"),
            "providers": providers, "onnxruntime": header.get("onnxruntime"),
            "python": header.get("python"), "platform": header.get("platform"),
            "machine": header.get("machine"), "clock": "time.perf_counter",
            "warmup": info.get("warmup"), "repeats": info.get("repeats"),
            "max_sessions": info.get("max_sessions"), "grid": table["grid"],
            "channel_multiple": table["channel_multiple"], "min_frames": table["min_frames"],
            "weights": "constant (latency does not depend on them)",
            "executed": "a static-shape ONNX conv per grid point (dance.devices.layer_table)",
            "network_dense_ms": dense_ms, "network_floor_ms": floor_ms,
            "floor_source": source, "layer_dense_sum_ms": layer_dense,
            "decision_overhead": ("not measured on a device (no per-layer decision is "
                                  "timed): a controller trained on this table is charged "
                                  "none")}}
    return out


def newest_runner_log(folder: Path) -> Path | None:
    """The newest runner log (``*.jsonl``) in `folder`, None when there is none."""
    found = sorted(folder.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
    return found[-1] if found else None


def write_device_tables(paths: Paths, device: str, models: list[str]) -> dict[str, str]:
    """Write each of `models`' latency table measured by `device`'s newest runner log
    (``Paths.device_latency_table``), removing a table the log does not give (it would be
    an older run's); returns per model its CSV path or "not measured: why"."""
    log_path = newest_runner_log(paths.device_logs(device))
    tables: dict[str, dict[str, Any]] = {}
    why = "not measured: no runner log of this device"
    if log_path is not None:
        log = logs.read_runner_log(log_path)
        manifest = read_json(paths.device_bundle / "manifest.json")
        logs.check_bundle(log, manifest, paths.device_bundle)
        tables = device_tables(log, manifest)
        why = f"not measured: {log_path.name} has no per-layer timings"
    out = {}
    for model in models:
        csv = paths.device_latency_table(device, model)
        if model not in tables:
            for stale in (csv, csv.with_suffix(".json")):
                stale.unlink(missing_ok=True)
            out[model] = why
            continue
        write_json(csv.with_suffix(".json"), tables[model]["conditions"])
        write_csv(csv, tables[model]["rows"], COLUMNS)
        out[model] = str(csv)
    return out
