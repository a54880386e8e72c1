"""`python -m dance export-onnx`: dense and DANCE networks to ONNX, once, for every device.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch.export, non-strict, then onnxscript
translation; needs the ``onnx`` and ``onnxscript`` packages) writes opset 18; a lower
``devices.opset`` (default 15, for the ONNX Runtime 1.11 of a Jetson Nano's Python 3.6) is
reached by :func:`lower_opset` (ONNX's version converter, plus the repairs that it and
older ONNX Runtimes need), and the file is stamped with the oldest IR version that carries
its opset (the exporter writes IR 10, which ONNX Runtime reads from 1.18 only). The DANCE graph
(:class:`dance.devices.graph.GraphNet`) holds the controller and the per-clip decisions:
``NonZero`` on the keep masks, ``Gather`` of the kept channels and of the weight slices,
``ScatterND`` of the computed output frames — torch.export keeps their sizes as unbacked
symbols, so one graph serves every clip. The legacy TorchScript exporter (``dynamo=False``)
is not used.

Both networks are rewritten like the host bench's (``bench.prepare``: BatchNorm folded,
padding-only taps dropped) and their adaptive pools replaced by static gathers
(:func:`~dance.devices.graph.static_pools`), so dense and DANCE differ only by pruning.

Bundle (``Paths.device_bundle``): ``<model>_<method>.onnx`` per network, ``clips.npy``
(the first test clips, network input format), ``reference.npz`` (PyTorch logits of each
network on those clips under its name, and for DANCE the kept counts [clips, layers, 3] under
``<name>#kept``, which the host checks a device's outputs against), ``manifest.json`` and a copy of the device runner;
with ``devices.latency_table``, per model also the single-conv graphs of its per-layer
latency table and its floor graph (``<model>_table_*.onnx``, ``<model>_floor.onnx``,
listed under ``latency_tables``; :mod:`dance.devices.layer_table`). Every exported
model is run by ONNX Runtime on the clips and compared with PyTorch (logits, and for DANCE
the kept frames/channels/features of every layer against the reference masks); the result
goes to ``Paths.onnx_export_check``.
"""

from __future__ import annotations

import copy
import hashlib
import shutil
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from dance.data.dataset import ClipDataset, open_split
from dance.devices.graph import GraphNet, static_pools
from dance.errors import DanceError
from dance.io import atomic_path, write_json
from dance.plan import export_points

if TYPE_CHECKING:
    import onnx

RUNNER = Path(__file__).with_name("device_runner.py")
BUNDLE_FORMAT = "dance-device-bundle"
EXPORTER_OPSET = 18          # the lowest opset torch.onnx.export(dynamo=True) writes


def export_onnx(module: nn.Module, clip: torch.Tensor, path: Path, opset: int,
                outputs: list[str]) -> None:
    """Export `module` (batch-1 input `clip`) to `path` atomically, weights inside the file."""
    try:
        import onnx
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise DanceError(f"ONNX export needs the onnx and onnxscript packages ({exc}); "
                         "pip install onnx onnxscript") from None
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # GraphNet links a fresh decision holder into its parts on every call (by design)
        warnings.filterwarnings("ignore", message=".*were assigned during export.*")
        program = torch.onnx.export(module.eval(), (clip,), dynamo=True,
                                    opset_version=max(opset, EXPORTER_OPSET),
                                    input_names=["clip"], output_names=outputs,
                                    external_data=False, optimize=True, verbose=False)
        program.save(str(tmp))
        onnx.save(lower_opset(onnx.load(str(tmp)), opset), str(tmp))


def lower_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """`model` at default-domain opset `opset`, with the repairs old ONNX Runtimes need
    (:func:`gemm_bias`, :func:`reshape_allowzero`) and the oldest IR version that carries
    the opset (a runtime refuses a newer IR at load), fully checked.

    The dynamo exporter writes opset 18 or later, and its own converter goes no lower.
    ONNX's C++ version converter does, as long as every Reduce op has constant axes (the
    exporter's optimizer folds them) and there is no Pad (GraphNet pads by Concat); it
    then leaves the ``noop_with_empty_axes`` attribute of the opset-18 Reduce ops on
    ReduceMax/ReduceL2, whose older versions lack it. With ``axes`` given it is moot, so it
    is dropped; anything else the converter cannot do raises :class:`DanceError`."""
    import onnx
    from onnx import helper, version_converter

    current = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < current:
        try:
            model = version_converter.convert_version(model, opset)
        except RuntimeError as exc:
            raise DanceError(f"config key 'devices.opset' = {opset}: ONNX's version converter "
                             f"cannot lower this graph from opset {current} ({exc})") from None
        for node in model.graph.node:
            schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
            for attr in list(node.attribute):
                if attr.name in schema.attributes:
                    continue
                has_axes = any(a.name == "axes" for a in node.attribute)
                if attr.name != "noop_with_empty_axes" or not (has_axes or attr.i == 0):
                    raise DanceError(f"config key 'devices.opset' = {opset}: {node.op_type} "
                                     f"node {node.name!r} keeps attribute {attr.name!r}, which "
                                     f"opset {opset} does not have")
                node.attribute.remove(attr)
    gemm_bias(model)
    reshape_allowzero(model)
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    return model


def gemm_bias(model: onnx.ModelProto) -> None:
    """Give every Gemm without its optional C an explicit zero C (in place).

    The exporter's optimizer drops a zero bias, and ONNX Runtime 1.11 (the Nano's) then
    refuses the graph: its Gemm+ReLU fusion assumes three inputs ("has input size 2 not in
    range [min=3, max=3]"). Adding zero changes no output."""
    from onnx import numpy_helper

    weights = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Gemm" or (len(node.input) >= 3 and node.input[2]):
            continue
        b = weights.get(node.input[1])
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        if b is None:
            raise DanceError(f"Gemm node {node.name!r} has a computed weight and no bias; "
                             "the export cannot give it a bias of the right size")
        array = numpy_helper.to_array(b)
        name = f"{node.name}_zero_bias"
        model.graph.initializer.append(numpy_helper.from_array(
            np.zeros(array.shape[0] if trans_b else array.shape[1], array.dtype), name))
        del node.input[2:]
        node.input.append(name)


def reshape_allowzero(model: onnx.ModelProto) -> None:
    """Clear ``allowzero`` on Reshapes whose constant shape has no 0 (in place): it then
    means nothing, and ONNX Runtime 1.10 (the last Python 3.6 build on PyPI) refuses it
    next to a -1 ("!allow_zero was false")."""
    from onnx import numpy_helper

    shapes = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] not in shapes:
            continue
        for attr in node.attribute:
            if attr.name == "allowzero" and attr.i and (shapes[node.input[1]] != 0).all():
                attr.i = 0


def onnx_versions(path: Path) -> dict[str, int]:
    """The default-domain opset and the IR version `path` declares (what a runtime checks
    at load)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {"opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "ir_version": model.ir_version}


def session(path: Path, threads: int = 0):
    """An ONNX Runtime CPU session of `path` (`threads` intra-op threads; 0 = ORT's choice)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def method_name(point: int | None) -> str:
    return "dense" if point is None else f"dance@{point}"


def build_networks(cfg: dict, model_name: str, num_classes: int,
                   ) -> dict[str, tuple[nn.Module, nn.Module | None]]:
    """method → (exportable module, AAPNet reference or None) for dense and every point."""
    from dance.aap.factory import load_controller
    from dance.measure.variants import prepare_network, timing_options
    from dance.models.trained import load_trained

    backbone = prepare_network(load_trained(cfg, model_name, "ava", num_classes).eval(),
                               timing_options(cfg)["prepare"])
    shape = backbone.clip_shape
    out: dict[str, tuple[nn.Module, nn.Module | None]] = {
        "dense": (static_pools(copy.deepcopy(backbone), shape), None)}
    for k in export_points(cfg):
        net = load_controller(cfg, model_name, "dance", k, num_classes, eval_mode="masked",
                              backbone=copy.deepcopy(backbone))
        out[method_name(k)] = (GraphNet(net).eval(), net.eval())
    return out


@torch.no_grad()
def reference_outputs(module: nn.Module, net: nn.Module | None, clips: torch.Tensor,
                      ) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """PyTorch logits [N, classes] of every clip, and for DANCE the reference kept counts
    [L, 3] per clip from the masked AAPNet (the repository's reference execution)."""
    if net is None:
        return torch.cat([module(clips[i:i + 1]) for i in range(len(clips))]).numpy(), None
    logits, kept = [], []
    for i in range(len(clips)):
        net.state.record = True
        logits.append(net(clips[i:i + 1]))
        kept.append(np.array([[float(fr.sum()), float(ch.sum()), float(fe.sum())]
                              for fr, ch, fe in net.state.records.values()]))
        net.state.record = False
    return torch.cat(logits).numpy(), kept


def check_onnx(path: Path, clips: np.ndarray, logits: np.ndarray,
               kept: list[np.ndarray] | None) -> dict[str, Any]:
    """ONNX Runtime on every clip vs PyTorch: max |Δ logits|, argmax agreement, decisions."""
    sess = session(path)
    diffs, same_class, same_kept = [], [], []
    for i in range(len(clips)):
        outs = sess.run(None, {"clip": clips[i:i + 1]})
        diffs.append(float(np.abs(outs[0] - logits[i:i + 1]).max()))
        same_class.append(bool(outs[0].argmax() == logits[i].argmax()))
        if kept is not None:
            same_kept.append(bool(np.array_equal(outs[1], kept[i])))
    scale = float(np.abs(logits).max())
    return {"clips": len(clips), "max_abs_diff": max(diffs), "logit_scale": scale,
            "same_top1": all(same_class),
            "same_decisions": all(same_kept) if kept is not None else None,
            # a share exactly at its threshold can fall either way under other float sums
            "clips_with_other_decisions": (len(same_kept) - sum(same_kept)
                                           if kept is not None else None)}


def bundle_clips(test: ClipDataset, clips: int) -> torch.Tensor:
    """The first `clips` (``devices.clips``, default ``bench.clips``) clips of the `test`
    split, network input format."""
    n = min(clips, len(test))
    return test.inputs(slice(0, n)).contiguous()


def export_table(dense: nn.Module, clip: torch.Tensor, model_name: str, aap: dict,
                 opset: int, out: Path) -> dict[str, Any]:
    """The per-layer latency table of `model_name` in the bundle (:mod:`dance.devices.
    layer_table`): its graphs and floor graph written into `out`, and its manifest entry.
    `dense`: the exported dense network; `aap`: the config's ``aap`` section."""
    from dance.devices import layer_table

    t = aap["latency_table"]
    layers = layer_table.export_layer_graphs(dense, clip, model_name, t,
                                             aap["channel_multiple"], aap["min_frames"],
                                             opset, out)
    floor = f"{model_name}_floor.onnx"
    export_onnx(layer_table.floor_network(dense, clip), clip, out / floor, opset, ["logits"])
    layer_table.check_floor_graph(out / floor, out / f"{model_name}_dense.onnx", len(layers))
    return {"model": model_name, "dense": f"{model_name}:dense", "floor": floor,
            "layers": layers, "warmup": t["warmup"], "repeats": t["repeats"],
            "grid": {k: list(t[k]) for k in ("frames", "channels", "features")},
            "channel_multiple": aap["channel_multiple"], "min_frames": aap["min_frames"]}


def export_bundle(cfg: dict) -> Path:
    """Export every configured model (dense + DANCE points), check each against PyTorch,
    write the bundle and the check; returns the bundle's manifest path."""
    from dance import runtime
    from dance.paths import Paths

    runtime.setup({**cfg, "device": "cpu"})
    paths = Paths(cfg)
    out = paths.device_bundle
    out.mkdir(parents=True, exist_ok=True)
    test = open_split(cfg, "test")
    clips = bundle_clips(test, cfg["devices"]["clips"] or cfg["bench"]["clips"])
    clips_np = clips.numpy().astype(np.float32)
    num_classes = test.num_classes
    opset = cfg["devices"]["opset"]
    models, checks, refs = [], {}, {}
    tables = []
    for model_name in cfg["models"]:
        networks = build_networks(cfg, model_name, num_classes)
        for method, (module, net) in networks.items():
            name = f"{model_name}:{method}"
            file = f"{model_name}_{method.replace('@', '_')}.onnx"
            outputs = ["logits"] if net is None else ["logits", "kept"]
            start = time.perf_counter()
            export_onnx(module, clips[:1], out / file, opset, outputs)
            seconds = time.perf_counter() - start
            logits, kept = reference_outputs(module, net, clips)
            refs[name] = logits.astype(np.float32)
            if kept is not None:                      # the device's decisions are checked too
                refs[f"{name}#kept"] = np.stack(kept).astype(np.float32)
            check = check_onnx(out / file, clips_np, logits, kept)
            check.update({"file": file, "export_seconds": seconds,
                          "bytes": (out / file).stat().st_size, **onnx_versions(out / file)})
            checks[name] = check
            models.append({"name": name, "model": model_name, "method": method, "file": file,
                           "outputs": outputs})
        if cfg["devices"]["latency_table"]:
            tables.append(export_table(networks["dense"][0], clips[:1], model_name,
                                       cfg["aap"], opset, out))
    with atomic_path(out / "clips.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, clips_np)
    with atomic_path(out / "reference.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **refs)
    with atomic_path(out / RUNNER.name) as tmp:
        shutil.copyfile(RUNNER, tmp)
    digest = hashlib.sha256()
    for m in models:
        digest.update((out / m["file"]).read_bytes())
    from dance.devices.layer_table import table_files

    for file in table_files({"latency_tables": tables}):
        digest.update((out / file).read_bytes())
    digest.update(clips_np.tobytes())
    import onnx
    import onnxruntime

    manifest = {"format": BUNDLE_FORMAT, "version": 1, "id": digest.hexdigest()[:16],
                "models": models, "clips": "clips.npy", "reference": "reference.npz",
                "runner": RUNNER.name, "clip_shape": list(clips_np.shape[1:]),
                "opset": opset, "torch": torch.__version__, "onnx": onnx.__version__,
                "onnxruntime_host": onnxruntime.__version__, "latency_tables": tables}
    exporter = f"torch.onnx.export(dynamo=True, opset_version={max(opset, EXPORTER_OPSET)})"
    if opset < EXPORTER_OPSET:
        exporter += f", then onnx.version_converter to opset {opset}"
    write_json(paths.onnx_export_check, {"bundle": manifest["id"], "opset": opset,
                                         "exporter": exporter, "models": checks})
    write_json(out / "manifest.json", manifest)
    return out / "manifest.json"
