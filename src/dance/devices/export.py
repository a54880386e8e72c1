"""`python -m dance export-onnx`: dense and DANCE networks to ONNX, once, for every device.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch.export, non-strict, then onnxscript
translation; needs the ``onnx`` and ``onnxscript`` packages). The DANCE graph
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
network on those clips), ``manifest.json`` and a copy of the device runner. Every exported
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
from typing import Any

import numpy as np
import torch
from torch import nn

from dance.devices.graph import GraphNet, static_pools
from dance.errors import DanceError
from dance.io import atomic_path, write_json

RUNNER = Path(__file__).with_name("device_runner.py")
BUNDLE_FORMAT = "dance-device-bundle"


def export_onnx(module: nn.Module, clip: torch.Tensor, path: Path, opset: int,
                outputs: list[str]) -> None:
    """Export `module` (batch-1 input `clip`) to `path` atomically, weights inside the file."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise DanceError(f"ONNX export needs the onnx and onnxscript packages ({exc}); "
                         "pip install onnx onnxscript") from None
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # GraphNet links a fresh decision holder into its parts on every call (by design)
        warnings.filterwarnings("ignore", message=".*were assigned during export.*")
        program = torch.onnx.export(module.eval(), (clip,), dynamo=True, opset_version=opset,
                                    input_names=["clip"], output_names=outputs,
                                    external_data=False, optimize=True, verbose=False)
        program.save(str(tmp))


def session(path: Path, threads: int = 0):
    """An ONNX Runtime CPU session of `path` (`threads` intra-op threads; 0 = ORT's choice)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def export_points(cfg: dict) -> list[int]:
    """The DANCE operating points to export (``devices.points``; default every trained one)."""
    from dance.train.aap import trained_points

    trained = trained_points(cfg)["dance"]
    wanted = cfg["devices"]["points"]
    if wanted is None:
        return trained
    missing = [k for k in wanted if k not in trained]
    if missing:
        raise DanceError(f"config key 'devices.points' lists {missing}, which the workflow does "
                         f"not train (trained DANCE points: {trained})")
    return list(wanted)


def method_name(point: int | None) -> str:
    return "dense" if point is None else f"dance@{point}"


def build_networks(cfg: dict, model_name: str, num_classes: int,
                   ) -> dict[str, tuple[nn.Module, nn.Module | None]]:
    """method → (exportable module, AAPNet reference or None) for dense and every point."""
    from dance.measure.variants import prepare_network
    from dance.train.aap import load_controller
    from dance.train.stage import load_trained

    backbone = prepare_network(load_trained(cfg, model_name, "ava", num_classes).eval(), cfg)
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


def bundle_clips(cfg: dict) -> torch.Tensor:
    """The first ``devices.clips`` (default ``bench.clips``) test clips, network input format."""
    from dance.data.dataset import ClipDataset, to_input
    from dance.paths import Paths

    test = ClipDataset(Paths(cfg).data_dir, "test")
    n = min(cfg["devices"]["clips"] or cfg["bench"]["clips"], len(test))
    return to_input(test.clips[:n]).contiguous()


def export_bundle(cfg: dict) -> Path:
    """Export every configured model (dense + DANCE points), check each against PyTorch,
    write the bundle and the check; returns the bundle's manifest path."""
    from dance import runtime
    from dance.data.dataset import ClipDataset
    from dance.paths import Paths

    runtime.setup({**cfg, "device": "cpu"})
    paths = Paths(cfg)
    out = paths.device_bundle
    out.mkdir(parents=True, exist_ok=True)
    clips = bundle_clips(cfg)
    clips_np = clips.numpy().astype(np.float32)
    num_classes = ClipDataset(paths.data_dir, "test").num_classes
    opset = cfg["devices"]["opset"]
    models, checks, refs = [], {}, {}
    for model_name in cfg["models"]:
        for method, (module, net) in build_networks(cfg, model_name, num_classes).items():
            name = f"{model_name}:{method}"
            file = f"{model_name}_{method.replace('@', '_')}.onnx"
            outputs = ["logits"] if net is None else ["logits", "kept"]
            start = time.perf_counter()
            export_onnx(module, clips[:1], out / file, opset, outputs)
            seconds = time.perf_counter() - start
            logits, kept = reference_outputs(module, net, clips)
            refs[name] = logits.astype(np.float32)
            check = check_onnx(out / file, clips_np, logits, kept)
            check.update({"file": file, "export_seconds": seconds,
                          "bytes": (out / file).stat().st_size})
            checks[name] = check
            models.append({"name": name, "model": model_name, "method": method, "file": file,
                           "outputs": outputs})
    with atomic_path(out / "clips.npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, clips_np)
    with atomic_path(out / "reference.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **refs)
    with atomic_path(out / RUNNER.name) as tmp:
        shutil.copyfile(RUNNER, tmp)
    digest = hashlib.sha256()
    for m in models:
        digest.update((out / m["file"]).read_bytes())
    digest.update(clips_np.tobytes())
    import onnx
    import onnxruntime

    manifest = {"format": BUNDLE_FORMAT, "version": 1, "id": digest.hexdigest()[:16],
                "models": models, "clips": "clips.npy", "reference": "reference.npz",
                "runner": RUNNER.name, "clip_shape": list(clips_np.shape[1:]),
                "opset": opset, "torch": torch.__version__, "onnx": onnx.__version__,
                "onnxruntime_host": onnxruntime.__version__}
    write_json(paths.onnx_export_check, {"bundle": manifest["id"], "opset": opset,
                                         "exporter": "torch.onnx.export(dynamo=True)",
                                         "models": checks})
    write_json(out / "manifest.json", manifest)
    return out / "manifest.json"
