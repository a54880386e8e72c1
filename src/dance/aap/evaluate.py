"""Test-split evaluation of one AAP operating point (`python -m dance evaluate-aap`).

Hard masks (``masked`` mode, batched) on every test clip; for each clip and prunable layer
the kept frames/channels/features are recorded and turned into costs with the measurement
layer only:

* effective MACs — the exact count of :func:`dance.measure.macs.effective_conv_macs`
  (:func:`batch_effective_macs` is the same formula for a batch of clips; a test checks
  they agree), plus every non-prunable layer (first conv, residual downsamples, linear
  layers) at dense cost, so that ratios are whole-network. The dense reference uses the
  same exact convention (taps that read padding are not MACs); fvcore's count is reported
  beside it;
* memory accesses — :func:`dance.measure.memory.conv_accesses` with the kept input
  channels and elements (non-prunable layers dense);
* energy — :func:`dance.measure.energy.estimate` for every configured cost table, always
  labelled "model estimate";
* overhead, separately: the controller's MACs, its input statistics (element operations)
  and the pruning function's profile sums.

Reported: top-1 (and of the same backbone unpruned — from its evaluation JSON when that
exists, else computed here — and of the dense baseline), mean / p5 /
p95 of per-clip MACs, kept shares per dimension and layer, the Spearman and Pearson
correlation of per-clip MACs with the stored clip difficulty (and, on the generated set,
the same for each nuisance term the difficulty sums), and, on a few clips, the
largest logit difference between the timed pruned path and the masked reference.
Decisions are saved for the figures: per clip × layer counts (CSV) and the full masks of
the first ``aap.decision_clips`` clips (NPZ).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dance import runtime
from dance.aap.controller import stats_ops
from dance.aap.model import AAPNet
from dance.data.dataset import ClipDataset, open_split
from dance.io import atomic_path, read_json, write_csv, write_json
from dance.measure import accuracy, energy, memory
from dance.measure import macs as macs_mod
from dance.measure.macs import batch_effective_macs  # noqa: F401  (re-exported)
from dance.measure.profile import cost_tables
from dance.measure.stats import distribution
from dance.nn.probe import example_input, probe_calls
from dance.paths import Paths

DECISION_COLUMNS = ["clip", "label", "difficulty", "correct", "layer", "frames_kept",
                    "frames_total", "channels_kept", "channels_total", "features_kept",
                    "features_total", "tau_fr", "tau_ch", "tau_fe", "macs", "macs_dense"]


@torch.no_grad()
def collect(net: AAPNet, dataset: ClipDataset, batch_size: int, device: torch.device,
            dense: bool = True) -> dict[str, Any]:
    """Masked-mode logits, thresholds [N,L,3], every layer's masks and (if `dense`) the
    unpruned backbone's logits."""
    net.eval()
    st = net.state
    st.record = True
    logits, dense_logits, taus = [], [], []
    masks: dict[str, list[list[Tensor]]] = {n: [[], [], []] for n in net.names}
    try:
        for x, _, _ in dataset.batches(batch_size):
            x = x.to(device)
            if dense:
                dense_logits.append(net.dense(x).float().cpu())
            logits.append(net(x).float().cpu())
            taus.append(st.tau.detach().cpu())
            for name in net.names:
                for j, m in enumerate(st.records[name]):
                    masks[name][j].append(m.cpu())
    finally:
        st.record = False
    return {"logits": torch.cat(logits),
            "dense": torch.cat(dense_logits) if dense else None, "tau": torch.cat(taus),
            "masks": {n: tuple(torch.cat(parts) for parts in v) for n, v in masks.items()}}


def clip_costs(net: AAPNet, masks: dict[str, tuple[Tensor, Tensor, Tensor]],
               fixed_accesses: dict[str, int], bytes_per_element: int = 4,
               ) -> dict[str, Any]:
    """Per clip and layer: effective MACs and memory accesses; whole-network totals."""
    names = net.names
    n = masks[names[0]][0].shape[0]
    layer_macs = {}
    acc = {k: np.full(n, fixed_accesses[k], dtype=np.int64) for k in memory.FIELDS}
    for wrapper, name, in_shape, out_shape in zip(net.wrappers, names, net.macs["in_shapes"],
                                                  net.macs["out_shapes"], strict=True):
        fr, ch, fe = masks[name]
        layer_macs[name] = batch_effective_macs(wrapper.conv, in_shape, fr, ch, fe).numpy()
        kc = ch.sum(1).numpy()
        kept = kc * fr.sum(1).numpy() * fe.flatten(1).sum(1).numpy()
        for i in range(n):
            a = memory.conv_accesses(wrapper.conv, in_shape, out_shape, int(kc[i]),
                                     int(kept[i]), bytes_per_element)
            for k in memory.FIELDS:
                acc[k][i] += a[k]
    total = net.macs["fixed_macs"] + sum(layer_macs.values())
    return {"layer_macs": layer_macs, "macs": np.asarray(total, dtype=np.int64),
            "accesses": acc}


def _fixed_and_dense_accesses(backbone: nn.Module, prunable: set[str], input_shape,
                              bytes_per_element: int) -> tuple[dict[str, int], dict[str, int]]:
    rows = memory.dense_profile(backbone, (1, *input_shape[-4:]), bytes_per_element)
    fixed = {k: sum(r[k] for r in rows if r["layer"] not in prunable) for k in memory.FIELDS}
    dense = {k: sum(r[k] for r in rows) for k in memory.FIELDS}
    return fixed, dense


def _correlation(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from scipy import stats

    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return {"n": int(ok.sum()), "spearman": None, "spearman_p": None, "pearson": None,
                "pearson_p": None, "note": "too few clips with a difficulty score, or constant"}
    s = stats.spearmanr(x[ok], y[ok])
    p = stats.pearsonr(x[ok], y[ok])
    return {"n": int(ok.sum()), "spearman": float(s.statistic), "spearman_p": float(s.pvalue),
            "pearson": float(p.statistic), "pearson_p": float(p.pvalue)}


def pruning_ops(net: AAPNet, tau: Tensor, masks) -> np.ndarray:
    """Per clip: element operations of the pruning function (profile sums over each pruned
    site's input; feature sums over its kept frames × channels), the AAP-side overhead of
    the backbone's layers."""
    n = tau.shape[0]
    ops = np.zeros(n, dtype=np.int64)
    for i, (name, shape) in enumerate(zip(net.names, net.macs["in_shapes"], strict=True)):
        numel = int(np.prod(shape))
        fr, ch, fe = masks[name]
        active = (tau[:, i] > 0).numpy()
        kept = (ch.sum(1) * fr.sum(1)).numpy() * shape[2] * shape[3]
        ops += np.where(active[:, :2].any(1), numel, 0)
        ops += np.where(active[:, 2], kept, 0)
    return ops


def evaluate_net(net: AAPNet, test: ClipDataset, device: torch.device, energy_section: dict,
                 batch_size: int, check_clips: int, correct_dense: int | None = None,
                 ) -> dict[str, Any]:
    """Every number of the module docstring for `net` on `test` (no files written), in
    batches of `batch_size` (``train.eval_batch_size``), with the config's `energy_section`
    (cost tables, bytes per element); the pruned path is checked on `check_clips` clips
    (``aap.pruned_check_clips``).

    `correct_dense`: the unpruned backbone's count of correct test clips when already known
    (its evaluation JSON); otherwise the dense logits are computed here too (and the
    agreement reported). Top-1 and its delta come from integer counts
    (:mod:`dance.measure.accuracy`).
    """
    bpe = energy_section["bytes_per_element"]
    data = collect(net, test, batch_size, device, dense=correct_dense is None)
    labels = test.labels
    pred = data["logits"].argmax(1)
    dense_pred = data["dense"].argmax(1) if data["dense"] is not None else None
    fresh = net.dense_copy()                      # unwrapped copy for the dense profiles
    fixed_acc, dense_acc = _fixed_and_dense_accesses(fresh, set(net.names), net.input_shape,
                                                     bpe)
    costs = clip_costs(net, data["masks"], fixed_acc, bpe)
    dense_macs = net.macs["total"]
    macs_ratio = costs["macs"] / dense_macs
    acc_total = sum(costs["accesses"][k] for k in memory.FIELDS)
    dense_acc_total = sum(dense_acc.values())
    tables = cost_tables(energy_section)
    clip_acc = {k: [int(v) for v in costs["accesses"][k]] for k in memory.FIELDS}
    energy_out = {name: energy.per_clip_summary(costs["macs"], clip_acc, dense_macs, dense_acc,
                                                table) for name, table in tables.items()}
    a1_shape = (net.controller.channels, net.controller.frames, *_first_hw(net))
    prune_ops = pruning_ops(net, data["tau"], data["masks"])
    per_layer = []
    for i, (name, shape) in enumerate(zip(net.names, net.macs["in_shapes"], strict=True)):
        fr, ch, fe = data["masks"][name]
        per_layer.append({
            "layer": name, "in_shape": list(shape), "pruned": bool(net.controller.mask[i].any()),
            "frames_kept": float(fr.float().mean()), "channels_kept": float(ch.float().mean()),
            "features_kept": float(fe.float().mean()),
            "macs_dense": net.macs["layer_macs"][i],
            "macs_mean": float(costs["layer_macs"][name].mean()),
            "macs_ratio": float(costs["layer_macs"][name].mean() / net.macs["layer_macs"][i]),
            "tau_mean": [float(v) for v in data["tau"][:, i].mean(0)]})
    active = [r for r in per_layer if r["pruned"]]
    kept = {d: (float(np.mean([r[f"{d}_kept"] for r in active])) if active else 1.0)
            for d in ("frames", "channels", "features")}
    pruned_diff = _pruned_check(net, test, check_clips, data["logits"], device)
    correct = int((pred == labels).sum())
    if dense_pred is not None:
        correct_dense = int((dense_pred == labels).sum())
    clips = len(labels)
    return {
        "clips": clips, "correct": correct, "correct_dense": correct_dense,
        "top1": accuracy.top1(correct, clips),
        "top1_dense": accuracy.top1(correct_dense, clips),
        "top1_delta": accuracy.top1(correct - correct_dense, clips),
        "agreement_with_dense": (float((pred == dense_pred).float().mean())
                                 if dense_pred is not None else None),
        "macs": {"dense": dense_macs, "dense_fixed": net.macs["fixed_macs"],
                 "dense_fvcore": macs_mod.dense_summary(fresh, (1, *net.input_shape[-4:]))[
                     "macs_total"],
                 **{f"clip_{k}": v for k, v in distribution(costs["macs"].astype(np.float64)).items()},
                 **{f"ratio_{k}": v for k, v in distribution(macs_ratio).items()},
                 "convention": "exact: taps reading padding are not MACs (both counts)"},
        "memory": {"dense": int(dense_acc_total), "mean": float(acc_total.mean()),
                   "ratio": float(acc_total.mean() / dense_acc_total),
                   "bytes_per_element": bpe,
                   **{f"{k}_mean": float(costs["accesses"][k].mean()) for k in memory.FIELDS}},
        "energy": energy_out,
        "overhead": {
            "controller_macs": net.controller.macs(),
            "controller_macs_share": net.controller.macs() / dense_macs,
            "stats_ops": stats_ops(a1_shape, net.controller.stats_stride, net.controller.stats),
            "stats_ops_share": stats_ops(a1_shape, net.controller.stats_stride,
                                         net.controller.stats) / dense_macs,
            "pruning_ops_mean": float(prune_ops.mean()),
            "pruning_ops_share": float(prune_ops.mean() / dense_macs),
            "note": "ops are element operations (sums, squares, max), not MACs; shares are "
                    "relative to the dense network's MACs"},
        "kept": kept,
        "per_layer": per_layer,
        "difficulty_correlation": _correlation(macs_ratio, test.difficulty.numpy()),
        "difficulty_terms": {term: _correlation(macs_ratio, values.numpy())
                             for term, values in test.difficulty_terms.items()},
        "pruned_check": pruned_diff,
        "_data": data, "_costs": costs,
    }


def _first_hw(net: AAPNet) -> tuple[int, int]:
    calls = probe_calls(net.backbone, example_input(net.backbone, net.input_shape),
                        lambda _, m: m is net.backbone.first_act,
                        run=lambda x: net(x, mode="off"))
    return tuple(calls[0].output.shape[-2:])


@torch.no_grad()
def _pruned_check(net: AAPNet, test: ClipDataset, clips: int, masked_logits: Tensor,
                  device: torch.device) -> dict[str, Any]:
    n = min(clips, len(test))
    if n == 0 or device.type != "cpu":
        return {"clips": 0, "max_abs_logit_diff": None}
    diffs = []
    with torch.inference_mode():
        for i in range(n):
            x = test[i][0][None]
            out = net(x, mode="pruned")
            diffs.append(float((out - masked_logits[i]).abs().max()))
    return {"clips": n, "max_abs_logit_diff": max(diffs)}


def write_decisions(path_csv: Path, path_npz: Path, test: ClipDataset, net: AAPNet,
                    result: dict[str, Any], full_masks: int) -> None:
    """Per clip × layer counts (CSV) and the full masks of the first clips (NPZ)."""
    data, costs = result["_data"], result["_costs"]
    pred = data["logits"].argmax(1)
    rows = []
    for i in range(len(test)):
        for j, (name, shape) in enumerate(zip(net.names, net.macs["in_shapes"], strict=True)):
            fr, ch, fe = (m[i] for m in data["masks"][name])
            rows.append({
                "clip": i, "label": int(test.labels[i]),
                "difficulty": float(test.difficulty[i]),
                "correct": int(pred[i] == test.labels[i]), "layer": name,
                "frames_kept": int(fr.sum()), "frames_total": shape[1],
                "channels_kept": int(ch.sum()), "channels_total": shape[0],
                "features_kept": int(fe.sum()), "features_total": shape[2] * shape[3],
                "tau_fr": round(float(data["tau"][i, j, 0]), 6),
                "tau_ch": round(float(data["tau"][i, j, 1]), 6),
                "tau_fe": round(float(data["tau"][i, j, 2]), 6),
                "macs": int(costs["layer_macs"][name][i]), "macs_dense": net.macs["layer_macs"][j]})
    write_csv(path_csv, rows, DECISION_COLUMNS)
    k = min(full_masks, len(test))
    arrays: dict[str, np.ndarray] = {"clip": np.arange(k), "label": test.labels[:k].numpy(),
                                     "difficulty": test.difficulty[:k].numpy(),
                                     "layers": np.array(net.names)}
    for name in net.names:
        for dim, m in zip(("frames", "channels", "features"), data["masks"][name], strict=True):
            arrays[f"{name}:{dim}"] = m[:k].numpy()
    with atomic_path(path_npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def validate_aap(cfg: dict, model_name: str, variant: str, point: int) -> dict[str, Any]:
    """Top-1 (pruned and unpruned) and MAC ratio of one trained point on the whole val
    split; writes nothing. For choosing a recipe (docs/experiments.md, "threshold cap") without
    looking at the test split; the controller's own per-epoch validation saw
    ``aap.val_clips`` of these clips."""
    from dance.aap.factory import load_controller

    device = runtime.setup(cfg)
    torch.use_deterministic_algorithms(False)   # index ops in the pruned check
    val = open_split(cfg, "val")
    net = load_controller(cfg, model_name, variant, point, val.num_classes).to(device)
    result = evaluate_net(net, val, device, cfg["energy"], cfg["train"]["eval_batch_size"],
                          cfg["aap"]["pruned_check_clips"])
    return {"split": "val", "clips": result["clips"], "top1": result["top1"],
            "top1_dense": result["top1_dense"], "top1_delta": result["top1_delta"],
            "macs_ratio": result["macs"]["ratio_mean"]}


def evaluate_aap(cfg: dict, model_name: str, variant: str, point: int) -> Path:
    """Evaluate one trained operating point on the test split; write JSON, CSV and NPZ."""
    from dance.aap.factory import backbone_stage, check_point, load_controller

    device = runtime.setup(cfg)
    torch.use_deterministic_algorithms(False)   # index ops in the pruned check
    paths = Paths(cfg)
    test = open_split(cfg, "test")
    value = check_point(cfg["aap"], point)
    net = load_controller(cfg, model_name, variant, point, test.num_classes).to(device)
    own_eval = paths.evaluation(model_name, backbone_stage(variant))
    correct_dense = accuracy.correct_of(read_json(own_eval)) if own_eval.exists() else None
    result = evaluate_net(net, test, device, cfg["energy"], cfg["train"]["eval_batch_size"],
                          cfg["aap"]["pruned_check_clips"], correct_dense)
    base_eval = paths.evaluation(model_name, "baseline")
    correct_base = accuracy.correct_of(read_json(base_eval)) if base_eval.exists() else None
    write_decisions(paths.aap_decisions(model_name, variant, point),
                    paths.aap_masks(model_name, variant, point), test, net, result,
                    cfg["aap"]["decision_clips"])
    out = {k: v for k, v in result.items() if not k.startswith("_")}
    out.update({"model": model_name, "variant": variant, "point": point,
                "point_value": value, "budget": cfg["aap"]["budget"],
                "backbone_stage": backbone_stage(variant), "split": "test",
                "correct_baseline": correct_base,
                "top1_baseline": (None if correct_base is None
                                  else accuracy.top1(correct_base, out["clips"])),
                "top1_delta_baseline": (None if correct_base is None else
                                        accuracy.top1(out["correct"] - correct_base,
                                                      out["clips"])),
                "channel_multiple": cfg["aap"]["channel_multiple"]})
    path = paths.aap_eval(model_name, variant, point)
    write_json(path, out)
    return path
