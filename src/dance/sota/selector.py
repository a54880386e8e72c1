"""Dynamic pruning-level selection (Maleki et al., ACM TODAES 26(6), 2021), re-implemented.

Two pruned nets of the same backbone (:mod:`dance.sota.l1`: mild and aggressive) and a small
selector head on the aggressive net's conv trunk. Per clip (our reconstruction, as in the
paper the aggressive net's output is used when the selector trusts it):

1. the aggressive net runs in full; its last conv block's output (C3D: conv5b after BN and
   ReLU; R3D-18: layer4) is average-pooled over (T,H,W) — the trunk is shared, so these
   features cost only the pooling;
2. the head (MLP: D → ``sota.selector.hidden`` → 2, softmax; input standardised with fixed
   statistics of its training clips) gives s = P(aggressive net is correct);
3. s ≥ threshold: the aggressive net's prediction is the answer; otherwise the clip is
   *escalated*: the mild net runs on the clip and its prediction is the answer.

Per-clip cost = aggressive net + pooling (one MAC-equivalent per pooled element) + head
MACs, + the whole mild net if escalated (memory accesses likewise; the head's weights,
inputs and outputs count). Stored parameters = aggressive + mild + head.

Training: the head alone (both nets frozen), on the **val** split — held out from the nets'
fine-tuning, so "aggressive net correct" there is what it would be on unseen clips — with
target 1 iff the aggressive net's prediction is right; cross-entropy through the shared
training loop (:func:`dance.train.loop.fit`) on cached trunk features. The last
``sota.selector.monitor_share`` of the val clips are kept out of training to monitor it.

Operating points: every ``sota.selector.thresholds`` entry (``t0.7``, ...), plus
``always_aggressive`` (the aggressive net alone), ``always_mild`` (the mild net alone) and
``oracle`` (escalate exactly the clips the aggressive net gets wrong; no head — an upper
bound no deployable selector reaches).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dance import checkpoint
from dance.data.dataset import open_split
from dance.errors import ConfigError
from dance.identity import stage_identity
from dance.io import write_csv
from dance.measure import memory
from dance.paths import Paths
from dance.plan import SELECTOR_FIXED_POINTS, selector_point_name

# Module (by name) whose output is the trunk feature map the head pools (ReLU applied).
TRUNK_FEATURE = {"c3d": "bn5b", "r3d18": "layer4"}
# The routings without a threshold, named by the plan (the records the workflow waits for).
ALWAYS_AGGRESSIVE, ALWAYS_MILD, ORACLE = SELECTOR_FIXED_POINTS


def feature_module(model_name: str) -> str:
    if model_name not in TRUNK_FEATURE:
        raise ConfigError(f"no selector trunk feature defined for model {model_name!r}; "
                          f"known: {', '.join(TRUNK_FEATURE)}")
    return TRUNK_FEATURE[model_name]


def variant_name(point: str) -> str:
    return f"selector@{point}"


class SelectorHead(nn.Module):
    """Standardise → Linear → ReLU → Linear(2); softmax[:, 1] = P(aggressive net correct)."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.mlp = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def calibrate(self, feats: Tensor) -> None:
        self.mean.copy_(feats.mean(0))
        self.std.copy_(feats.std(0).clamp_min(1e-6) if len(feats) > 1 else torch.ones_like(
            self.std))

    def forward(self, feats: Tensor) -> Tensor:
        return self.mlp((feats - self.mean) / self.std)

    def confidence(self, feats: Tensor) -> Tensor:
        return self.forward(feats).softmax(1)[:, 1]


class TrunkTap:
    """Context manager: while active, every forward of `net` stores GAP(ReLU(feature map))
    of its `module_name` output in ``.pooled`` and the map's per-clip element count."""

    def __init__(self, net: nn.Module, module_name: str) -> None:
        self.module = net.get_submodule(module_name)
        self.pooled: Tensor | None = None
        self.elements = 0

    def _hook(self, module, args, output):
        self.pooled = torch.relu(output).mean(dim=(2, 3, 4))
        self.elements = int(output[0].numel())

    def __enter__(self) -> TrunkTap:
        self.handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


@torch.no_grad()
def trunk_pass(net: nn.Module, model_name: str, dataset, batch_size: int,
               device: torch.device) -> dict[str, Any]:
    """Logits [N,K] and pooled trunk features [N,D] of `net` on every clip of `dataset`."""
    net.eval().to(device)
    logits, feats = [], []
    with TrunkTap(net, feature_module(model_name)) as tap:
        for x, _, _ in dataset.batches(batch_size):
            logits.append(net(x.to(device)).float().cpu())
            feats.append(tap.pooled.float().cpu())
    return {"logits": torch.cat(logits), "features": torch.cat(feats),
            "elements": tap.elements}


class FeatureSet:
    """Cached features with binary targets, shaped like a ClipDataset for the training loop."""

    classes = ["escalate", "aggressive_ok"]

    def __init__(self, features: Tensor, targets: Tensor) -> None:
        self.features = features
        self.labels = targets.long()

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, batch_size: int, order: Tensor | None = None):
        order = torch.arange(len(self)) if order is None else order
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield self.features[idx], self.labels[idx], idx


def routing_costs(agg: dict[str, Any], mild: dict[str, Any], head: dict[str, Any],
                  pooled_elements: int, escalate: np.ndarray, use_head: bool = True,
                  run_aggressive: bool = True) -> dict[str, Any]:
    """Per-clip MACs, overhead and accesses of a routing decision (module docstring).

    `agg`/`mild`/`head` are :func:`dance.sota.record.static_costs` of the three networks;
    `escalate` [N] bool says which clips run the mild net too.
    """
    esc = np.asarray(escalate, dtype=bool)
    overhead = (pooled_elements + head["macs"]) if use_head else 0
    base = agg["macs"] if run_aggressive else 0
    macs = base + overhead + esc * mild["macs"]
    acc = {}
    for k in memory.FIELDS:
        fixed = (agg["accesses"][k] if run_aggressive else 0) + (
            head["accesses"][k] if use_head else 0)
        acc[k] = fixed + esc * mild["accesses"][k]
    return {"macs": macs.astype(np.float64), "overhead": np.full(len(esc), float(overhead)),
            "accesses": acc}


def selector_meta(cfg: dict, model_name: str, num_classes: int) -> dict:
    from dance.models.trained import model_meta

    agg = model_meta(cfg, model_name, "l1_aggressive", num_classes)
    return {**agg, "stage": "selector",
            "fingerprint": stage_identity(cfg, model_name, "selector")}


def _split_val(n: int, share: float) -> tuple[Tensor, Tensor]:
    held = int(round(n * share))
    cut = n - held if n - held >= 1 else n
    return torch.arange(cut), torch.arange(cut, n)


def train_selector(cfg: dict, model_name: str) -> Path:
    """Train the head of `model_name` (module docstring); resumable; returns the checkpoint."""
    from dance import runtime
    from dance.sota.l1 import load_l1
    from dance.train.loop import Schedule, fit, write_history

    device = runtime.setup(cfg)
    paths = Paths(cfg)
    sel = cfg["sota"]["selector"]
    val = open_split(cfg, "val")
    agg = load_l1(cfg, model_name, "aggressive", val.num_classes)
    run = trunk_pass(agg, model_name, val, cfg["train"]["eval_batch_size"], device)
    target = (run["logits"].argmax(1) == val.labels).long()
    fit_idx, mon_idx = _split_val(len(val), sel["monitor_share"])
    train_set = FeatureSet(run["features"][fit_idx], target[fit_idx])
    monitor = FeatureSet(run["features"][mon_idx], target[mon_idx]) if len(mon_idx) else \
        train_set
    torch.manual_seed(cfg["seed"])
    head = SelectorHead(run["features"].shape[1], sel["hidden"])
    head.calibrate(train_set.features)
    sched = Schedule(epochs=sel["epochs"], batch_size=sel["batch_size"], lr=sel["lr"],
                     optimizer="adamw", weight_decay=cfg["train"]["weight_decay"],
                     channels_last=False, eval_batch_size=cfg["train"]["eval_batch_size"],
                     progress=cfg["train"]["progress"], lr_key="sota.selector.lr")
    meta = selector_meta(cfg, model_name, val.num_classes)
    history = fit(head, train_set, monitor, sched, seed=cfg["seed"], device=device,
                  state_dir=paths.sota_state_dir(model_name, "selector"), meta=meta,
                  desc=f"{model_name} selector")
    write_history(paths.sota_history(model_name, "selector"), history)
    out = paths.sota_checkpoint(model_name, "selector")
    head.to("cpu")
    checkpoint.save(out, {"meta": meta, "model": head.state_dict(), "history": history,
                          "spec": {"features": head.mean.numel(), "hidden": sel["hidden"]},
                          "aggressive_ok_share_val": float(target.float().mean())})
    return out


def load_selector(cfg: dict, model_name: str, num_classes: int) -> SelectorHead:
    path = Paths(cfg).sota_checkpoint(model_name, "selector")
    payload = checkpoint.load(path, expect=selector_meta(cfg, model_name, num_classes))
    head = SelectorHead(payload["spec"]["features"], payload["spec"]["hidden"])
    head.load_state_dict(payload["model"])
    return head.eval()


def route(thresholds: Sequence[float], confidence: np.ndarray, agg_ok: np.ndarray,
          ) -> dict[str, dict[str, Any]]:
    """Point name → {escalate [N] bool, threshold, use_head, run_aggressive} for every
    threshold and the fixed points."""
    n = len(agg_ok)
    points = {selector_point_name(t): {"escalate": confidence < t, "threshold": float(t),
                                       "use_head": True, "run_aggressive": True}
              for t in thresholds}
    points[ALWAYS_AGGRESSIVE] = {"escalate": np.zeros(n, bool), "threshold": None,
                                 "use_head": False, "run_aggressive": True}
    points[ALWAYS_MILD] = {"escalate": np.ones(n, bool), "threshold": None,
                           "use_head": False, "run_aggressive": False}
    points[ORACLE] = {"escalate": ~np.asarray(agg_ok, bool), "threshold": None,
                      "use_head": False, "run_aggressive": True}
    return points


def evaluate_selector(cfg: dict, model_name: str) -> list[Path]:
    """One record per operating point (module docstring), from one pass of each net."""
    from dance import runtime
    from dance.measure.profile import cost_tables
    from dance.sota.l1 import load_l1
    from dance.sota.record import (
        bench_latency,
        dense_reference,
        l1_variant,
        static_costs,
        write_record,
    )

    device = runtime.setup(cfg)
    paths = Paths(cfg)
    test = open_split(cfg, "test")
    bs = cfg["train"]["eval_batch_size"]
    bpe = cfg["energy"]["bytes_per_element"]
    agg_net = load_l1(cfg, model_name, "aggressive", test.num_classes)
    mild_net = load_l1(cfg, model_name, "mild", test.num_classes)
    head = load_selector(cfg, model_name, test.num_classes)
    run = trunk_pass(agg_net, model_name, test, bs, device)
    mild_run = trunk_pass(mild_net, model_name, test, bs, device)
    with torch.no_grad():
        conf = head.confidence(run["features"]).numpy()
    labels = test.labels.numpy()
    agg_ok = run["logits"].argmax(1).numpy() == labels
    mild_ok = mild_run["logits"].argmax(1).numpy() == labels
    costs = {"aggressive": static_costs(agg_net.cpu(), agg_net.clip_shape, bpe),
             "mild": static_costs(mild_net.cpu(), mild_net.clip_shape, bpe),
             "head": static_costs(head, (head.mean.numel(),), bpe)}
    dense = dense_reference(cfg, model_name, test.num_classes)
    tables = cost_tables(cfg["energy"])
    out = []
    for name, p in route(cfg["sota"]["selector"]["thresholds"], conf, agg_ok).items():
        esc = p["escalate"]
        c = routing_costs(costs["aggressive"], costs["mild"], costs["head"], run["elements"],
                          esc, p["use_head"], p["run_aggressive"])
        params = {}
        if p["run_aggressive"]:
            params["aggressive"] = costs["aggressive"]["params"]
        if name != ALWAYS_AGGRESSIVE:
            params["mild"] = costs["mild"]["params"]
        if p["use_head"]:
            params["head"] = costs["head"]["params"]
        if name == ORACLE:
            latency = {"reason": "oracle routing needs the label: an upper bound, not a "
                                 "deployable network"}
        elif name == ALWAYS_MILD:
            latency = bench_latency(paths, model_name, l1_variant("mild"))
        elif name == ALWAYS_AGGRESSIVE:
            latency = bench_latency(paths, model_name, l1_variant("aggressive"))
        else:
            latency = bench_latency(paths, model_name, variant_name(name))
        out.append(write_record(
            paths.sota_record(model_name, "selector", name), method="selector",
            model=model_name, operating_point=name, point_value=p["threshold"],
            correct=np.where(esc, mild_ok, agg_ok), macs=c["macs"], overhead_macs=c["overhead"],
            accesses=c["accesses"], params=params, dense=dense, tables=tables,
            bytes_per_element=bpe, latency=latency,
            notes="pruning-level selection: aggressive net + pooled trunk features + head; "
                  "escalated clips also run the mild net (its prediction is used)",
            extra={"escalated_share": float(esc.mean()),
                   "aggressive_top1": float(agg_ok.mean()), "mild_top1": float(mild_ok.mean()),
                   "pooled_elements": run["elements"], "head_macs": costs["head"]["macs"]}))
    write_csv(paths.sota_record(model_name, "selector", "x").with_name("selector_routing.csv"),
              [{"clip": i, "label": int(labels[i]), "confidence": round(float(conf[i]), 6),
                "aggressive_ok": int(agg_ok[i]), "mild_ok": int(mild_ok[i])}
               for i in range(len(labels))])
    return out
