"""Training, evaluation and timing of the two dynamic baselines (method.md §5, items 4–5):
FBS-style channel gating (:mod:`.gating`) and learned frame skipping (:mod:`.frame_skip`).

Both start from the dense baseline checkpoint and fine-tune backbone + decision network for
``sota.epochs`` epochs (``ava.epochs`` when unset) with AVA's schedule (learning rate
``sota.<method>.lr`` or ``ava.lr``) through the one training loop (:func:`dance.train.stage.train_stage`, stage
``<method>@<K>`` for operating point K; resumable, fingerprinted). Evaluation runs the
test split with hard decisions, counts every clip's cost exactly from its decisions, times
batch 1 against the dense baseline interleaved (:func:`dance.measure.latency.time_variants`)
and writes one operating-point record (:mod:`dance.sota.record`) plus a per-clip CSV.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dance import checkpoint, runtime
from dance.data.dataset import ClipDataset, open_split
from dance.errors import ConfigError
from dance.identity import finetune_settings
from dance.io import write_csv
from dance.measure import memory
from dance.models.trained import load_trained, model_meta
from dance.paths import Paths
from dance.plan import DYNAMIC_RECORD, dynamic_stage
from dance.sota import record
from dance.sota.frame_skip import FrameSkipNet, frame_skip_loss_fn, length_costs
from dance.sota.gating import GatedNet, clip_costs, gating_loss_fn
from dance.train.ava import finetune_schedule
from dance.train.stage import train_stage

CLIP_COLUMNS = ["clip", "label", "difficulty", "correct", "macs", "overhead_macs", "kept",
                "kept_total"]


def check_method(method: str) -> None:
    if method not in DYNAMIC_RECORD:
        raise ConfigError(f"unknown dynamic baseline {method!r}; allowed: "
                          f"{', '.join(DYNAMIC_RECORD)}")


def point_value(sota: dict, method: str, point: int) -> float:
    """The value of operating point `point` of `method` (its ``sota.<method>.points``
    entry in the `sota` section), checked."""
    check_method(method)
    points = sota[method]["points"]
    if not 0 <= point < len(points):
        raise ConfigError(f"operating point {point} does not exist: config key "
                          f"'sota.{method}.points' has {len(points)} entries "
                          f"(0..{len(points) - 1})")
    value = float(points[point])
    if method == "frame_skip" and sota["frame_skip"]["budget"] == "target" and value > 1:
        raise ConfigError(f"config key 'sota.frame_skip.points' entry {point} = {value}: with "
                          f"budget=target every point is a kept-frame ratio in (0, 1]")
    return value


def wrap(sota: dict, seed: int, method: str, point: int, backbone: nn.Module) -> nn.Module:
    """The method's network around `backbone` (predictors/policy freshly initialised from
    `seed`, settings from the `sota` section)."""
    value = point_value(sota, method, point)
    torch.manual_seed(seed * 1009 + point)
    if method == "gating":
        net = GatedNet(backbone, value)
        fresh, scale = net.predictors(), sota["gating"]["predictor_lr_scale"]
    else:
        fs = sota["frame_skip"]
        net = FrameSkipNet(backbone, hidden=fs["hidden"], keep_init=fs["keep_init"],
                           downsample=fs["policy_downsample"], temperature=fs["temperature"])
        fresh, scale = net.policy.parameters(), fs["policy_lr_scale"]
    for p in fresh:              # new decision networks learn faster than the backbone
        p.lr_scale = float(scale)
    return net


@torch.no_grad()
def calibrate_policy(net: FrameSkipNet, dataset: ClipDataset, batch_size: int,
                     clips: int = 512) -> None:
    """Fix the policy's input standardisation from the first `clips` training clips."""
    net.eval()
    feats = [net.frame_features(x) for x, _, _ in
             dataset.batches(batch_size, torch.arange(min(clips, len(dataset))))]
    net.policy.calibrate(torch.cat(feats))


def train(cfg: dict, model_name: str, method: str, point: int) -> Path:
    """Fine-tune one operating point from the baseline with AVA's schedule for
    ``sota.epochs`` epochs (AVA's when unset), at ``sota.<method>.lr`` when set; resumable;
    returns the checkpoint."""
    sota = cfg["sota"]
    point_value(sota, method, point)
    smoothing = cfg["train"]["label_smoothing"]

    def init(num_classes: int) -> nn.Module:
        net = wrap(sota, cfg["seed"], method, point,
                   load_trained(cfg, model_name, "baseline", num_classes))
        if method == "frame_skip":
            calibrate_policy(net, open_split(cfg, "train"),
                             cfg["train"]["eval_batch_size"])
        return net

    if method == "gating":
        loss_fn = gating_loss_fn(sota["gating"]["l1"], smoothing)
    else:
        fs = sota["frame_skip"]
        loss_fn = frame_skip_loss_fn(fs["budget"], point_value(sota, method, point),
                                     fs["penalty"], smoothing)
    sched = finetune_schedule(cfg["train"], finetune_settings(cfg, f"sota.{method}.lr"))
    return train_stage(cfg, model_name, dynamic_stage(method, point), sched,
                       init=init, loss_fn=loss_fn)


def load(cfg: dict, model_name: str, method: str, point: int, num_classes: int) -> nn.Module:
    """The trained network of one operating point, checked against the current config."""
    from dance.models.trained import build

    stage = dynamic_stage(method, point)
    path = Paths(cfg).checkpoint(model_name, stage)
    payload = checkpoint.load(path, expect=model_meta(cfg, model_name, stage, num_classes))
    net = wrap(cfg["sota"], cfg["seed"], method, point, build(cfg, model_name, num_classes))
    net.load_state_dict(payload["model"])
    return net.eval()


# --- evaluation ---------------------------------------------------------------------------


@torch.no_grad()
def _decisions(net: nn.Module, method: str, test: ClipDataset, batch_size: int,
               device: torch.device) -> dict[str, Any]:
    """Logits and per-clip decisions of the test split (hard, batched)."""
    net.eval()
    logits, keeps = [], []
    for x, _, _ in test.batches(batch_size):
        x = x.to(device)
        if method == "gating":
            out, k = net.keeps(x)
            keeps.append(k)
        else:
            out = net(x)
            keeps.append(net.last_keep.cpu() > 0.5)
        logits.append(out.float().cpu())
    if method == "gating":
        merged = {n: torch.cat([k[n] for k in keeps]) for n in keeps[0]}
    else:
        merged = torch.cat(keeps)
    return {"logits": torch.cat(logits), "keeps": merged}


def gating_costs(net: GatedNet, keeps: dict[str, Tensor]) -> dict[str, Any]:
    """Per clip: MACs (backbone + predictor overhead), overhead, accesses, kept share."""
    c = clip_costs(net, keeps)
    overhead = c["predictor_macs"] + c["pool_ops"]
    acc = dict(c["accesses"])
    acc["weights_read"] = acc["weights_read"] + net.predictor_params()
    kept = sum(keeps[n].sum(1).numpy() for n in net.names)
    total = sum(g.conv.out_channels for g in net.gates)
    return {"macs": c["macs"] + overhead, "overhead": overhead, "accesses": acc,
            "kept": kept, "kept_total": total, "params": {
                "backbone": net.dense_params, "predictors": net.predictor_params()}}


def frame_skip_costs(net: FrameSkipNet, keeps: Tensor) -> dict[str, Any]:
    """Per clip: MACs of the backbone on its kept frames (exact, per kept length) + the
    policy's overhead; accesses likewise (policy: its MLP weights, the downsampled clip
    read and its first-layer output written)."""
    lengths = length_costs(net.backbone, net.input_shape)
    k = keeps.sum(1).numpy()
    over = net.overhead()
    overhead = over["macs"] + over["ops"]
    backbone_params = sum(p.numel() for p in net.backbone.parameters())
    policy_params = sum(p.numel() for p in net.policy.parameters())
    _, t, h, w = net.input_shape
    d = net.downsample
    c1 = net.backbone.first_conv.out_channels
    extra = {"weights_read": policy_params,
             "inputs_read": 3 * t * (h // d) * (w // d),
             "outputs_written": c1 * t * (h // d) * (w // d)}
    acc = {f: np.array([lengths[int(n)][f] for n in k], dtype=np.int64) + extra[f]
           for f in memory.FIELDS}
    macs = np.array([lengths[int(n)]["macs"] for n in k], dtype=np.int64) + overhead
    return {"macs": macs, "overhead": np.full(len(k), overhead, dtype=np.int64),
            "accesses": acc, "kept": k, "kept_total": t,
            "params": {"backbone": backbone_params, "policy": policy_params},
            "overhead_detail": over}


# --- timing -------------------------------------------------------------------------------


def bench_clips(bench: dict, test: ClipDataset) -> list[Tensor]:
    """The first ``bench.clips`` test clips at batch 1, in the bench's memory format (the
    config's `bench` section)."""
    n = min(bench["clips"], len(test))
    fmt = torch.channels_last_3d if bench["channels_last"] else torch.contiguous_format
    return [test.inputs(slice(i, i + 1)).contiguous(memory_format=fmt) for i in range(n)]


def _prepared(net: nn.Module, options: dict, clip_shape: tuple[int, ...] | None = None,
              ) -> nn.Module:
    from dance.measure.variants import timed_network

    if clip_shape is not None:
        net.clip_shape = clip_shape
    return timed_network(net, **options)


def timed_gating(net: GatedNet, options: dict):
    """Batch-1 timed callable: the gated network prepared like the dense reference
    (BatchNorm folded, padding-only taps dropped: `options`,
    :func:`dance.measure.variants.timing_options`), in ``pruned`` mode."""
    fast = _prepared(copy.deepcopy(net), options)
    fast.eval_mode = "pruned"
    return fast


def timed_frame_skip(net: FrameSkipNet, options: dict):
    """Batch-1 timed callable: policy on the downsampled clip (first layer with BatchNorm
    folded), then a copy of the backbone prepared for the kept length runs on the kept
    frames (one prepared copy per length, as the dense reference is prepared for T, with
    `options`, :func:`dance.measure.variants.timing_options`)."""
    from dance.nn.fold import fold_batchnorm

    policy_net = copy.deepcopy(net).eval()
    fold_batchnorm(policy_net.backbone)
    c, t, h, w = net.input_shape
    backbones = {k: _prepared(copy.deepcopy(net.backbone), options, (c, k, h, w))
                 for k in range(1, t + 1)}

    def run(x: Tensor) -> Tensor:
        keep = policy_net.decide(x)[0]
        idx = keep.nonzero().squeeze(1)
        return backbones[len(idx)](x.index_select(2, idx))

    run.backbones = backbones
    return run


def time_against_dense(cfg: dict, model_name: str, name: str, fn, test: ClipDataset,
                       num_classes: int) -> dict[str, Any]:
    """Interleaved batch-1 timing of `fn` and the prepared dense baseline (bench.* keys)."""
    from dance.measure import latency
    from dance.measure import variants as variant_registry
    from dance.nn.conv import conv_backend

    bench = cfg["bench"]
    threads = bench["threads"] or len(os.sched_getaffinity(0))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        clips = bench_clips(bench, test)
        baseline = load_trained(cfg, model_name, "baseline", num_classes)
        with conv_backend(bench["conv_backend"]):
            dense = variant_registry.build_variant("dense", cfg, model_name, "baseline",
                                                   baseline)
            res = latency.time_variants({"dense": dense, name: fn}, clips, bench["warmup"],
                                        bench["repeats"], reference="dense")
    finally:
        torch.set_num_threads(previous)
    return {"median_ms": res["summary"][name]["median"] * 1e3,
            "dense_median_ms": res["summary"]["dense"]["median"] * 1e3,
            "speedup": res["speedup"][name], "threads": threads,
            "bench": {"clips": len(clips), "warmup": bench["warmup"],
                      "repeats": bench["repeats"], "status": res["ratio_status"][name],
                      "iqr_ms": res["summary"][name]["iqr"] * 1e3,
                      "dense_iqr_ms": res["summary"]["dense"]["iqr"] * 1e3,
                      "audit": res["audit"], "load_average_1m":
                          res["environment"]["load_average_1m"],
                      "cpu": res["environment"]["cpu"]}}


@torch.no_grad()
def _timed_path_check(fn, masked: Tensor, clips: list[Tensor]) -> float:
    """Largest logit difference between the timed path and the batched evaluation."""
    with torch.inference_mode():
        return max(float((fn(x).float() - masked[i]).abs().max()) for i, x in enumerate(clips))


def evaluate(cfg: dict, model_name: str, method: str, point: int) -> Path:
    """Evaluate one operating point on the test split; write its record and per-clip CSV."""
    from dance.measure.profile import cost_tables
    from dance.measure.variants import timing_options

    value = point_value(cfg["sota"], method, point)
    device = runtime.setup(cfg)
    torch.use_deterministic_algorithms(False)   # index ops of the timed paths
    paths = Paths(cfg)
    test = open_split(cfg, "test")
    net = load(cfg, model_name, method, point, test.num_classes).to(device)
    data = _decisions(net, method, test, cfg["train"]["eval_batch_size"], device)
    net.to("cpu")
    costs = gating_costs(net, data["keeps"]) if method == "gating" else \
        frame_skip_costs(net, data["keeps"])
    pred = data["logits"].argmax(1)
    correct = (pred == test.labels).numpy()
    options = timing_options(cfg)
    fn = timed_gating(net, options) if method == "gating" else timed_frame_skip(net, options)
    clips = bench_clips(cfg["bench"], test)
    diff = _timed_path_check(fn, data["logits"], clips)
    rname = DYNAMIC_RECORD[method]
    name = f"{rname}@{point}"
    lat = time_against_dense(cfg, model_name, name, fn, test, test.num_classes)
    lat["bench"]["max_abs_logit_diff_timed_vs_batched"] = diff
    bpe = cfg["energy"]["bytes_per_element"]
    notes = (_GATING_NOTES if method == "gating" else _FRAME_SKIP_NOTES)
    extra = {"stage": dynamic_stage(method, point), "point_index": point,
             "kept_mean": float(np.mean(costs["kept"]) / costs["kept_total"]),
             "kept_unit": "output channels of gated convs" if method == "gating" else "frames",
             "max_abs_logit_diff_timed_vs_batched": diff}
    if method == "frame_skip":
        extra["overhead_detail"] = costs["overhead_detail"]
    out = record.write_record(
        paths.sota_dynamic_record(model_name, rname, point), method=rname, model=model_name,
        operating_point=point, point_value=value, correct=correct, macs=costs["macs"],
        overhead_macs=costs["overhead"], accesses=costs["accesses"], params=costs["params"],
        dense=record.dense_reference(cfg, model_name, test.num_classes),
        tables=cost_tables(cfg["energy"]), latency=lat, bytes_per_element=bpe, notes=notes, extra=extra)
    rows = [{"clip": i, "label": int(test.labels[i]), "difficulty": float(test.difficulty[i]),
             "correct": int(correct[i]), "macs": int(costs["macs"][i]),
             "overhead_macs": int(costs["overhead"][i]), "kept": int(costs["kept"][i]),
             "kept_total": int(costs["kept_total"])} for i in range(len(correct))]
    write_csv(paths.sota_dynamic_clips(model_name, rname, point), rows, CLIP_COLUMNS)
    return out


_GATING_NOTES = (
    "FBS-style gating (dance.sota.gating): per gated conv the kept output channels are "
    "computed and, where the next gated conv reads them through channel-wise ops, only they "
    "are read; non-prunable layers dense; overhead = saliency predictors (kept inputs × "
    "Cout MACs) + input pooling (one op per kept input element); predictor weights counted "
    "in weights_read. Latency: channel gather with sliced weights, batch 1.")
_FRAME_SKIP_NOTES = (
    "Learned frame skipping (dance.sota.frame_skip): the backbone runs on the kept frames "
    "only (exact MACs/accesses of the network at that clip length); overhead = the policy's "
    "first-layer pass on the spatially downsampled clip + its MLP + pooling ops. Latency: "
    "fewer frames, batch 1, a prepared backbone copy per kept length.")
