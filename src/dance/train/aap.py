"""Stage 3: train one AAP controller per model × variant × operating point (method.md §3).

The backbone (the AVA checkpoint; the baseline for the "no_ava" ablation) is frozen; only
the controller learns. Training runs through :func:`dance.train.loop.fit` on an
:class:`~dance.aap.model.AAPNet` (soft masks in train mode, hard masks in eval mode, a
state_dict holding just the controller), so resume, per-epoch checkpoints, progress bars
and the history come from the one training loop.

Loss (our reconstruction, docs/method.md "AAP"):

    CE(student, y) + kd_weight · T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + budget

with the teacher = the same frozen backbone unpruned (its logits of the training clips are
computed once before training, :class:`TeacherClips`) and the budget term on r = batch mean
of the expected whole-network MAC ratio from the soft masks (per prunable layer: exact
dense MACs × mean kept share of frames × channels × features; non-prunable layers at dense
cost), or with ``aap.cost: latency`` of the predicted latency ratio on the table's
machine (the per-layer table of :mod:`dance.aap.latency_table`, interpolated at the mean
kept shares):

* ``aap.budget = target``: penalty · |r − b| for the point's MAC budget b (two-sided: with
  the hinge alone, the first steps' push overshot and nothing pulled back — budget 0.8 ended
  at 0.6 of the MACs, docs/experiments.md "AAP training recipe");
* ``aap.budget = quadratic``: penalty · (r − b)², two-sided like ``target`` but with a pull
  that grows with the distance: where no budget of a sweep is reached (latency budgets on
  this host: every controller ended at one predicted latency above all of them), the
  constant pull of ``target`` gives every point the same equilibrium, this one a lower one
  for a tighter budget;
* ``aap.budget = ceiling``: penalty · max(0, r − b) (the hinge);
* ``aap.budget = weight``: β · r for the point's weight β.

The soft-mask temperature anneals geometrically from ``aap.temperature`` to
``aap.temperature_end`` over all steps (the step counter is a controller buffer, so a resumed
run continues the schedule). Variants: ``dance`` (all three dimensions, AVA backbone),
``no_ava`` (all three, baseline backbone), ``frames`` / ``channels`` / ``features`` (one
dimension, AVA backbone).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dance import checkpoint, runtime
from dance.aap.controller import first_layer_stats
from dance.aap.factory import (  # noqa: F401  (re-exported: their old home)
    DIMS,
    VARIANTS,
    aap_meta,
    backbone_stage,
    build_net,
    check_point,
    check_variant,
    controller_spec,
    load_controller,
)
from dance.aap.latency_table import latency_model
from dance.aap.model import AAPNet
from dance.data.dataset import ClipDataset, open_split
from dance.errors import ConfigError
from dance.paths import Paths
from dance.train.loop import LossFn, Schedule, fit, write_history


class _StopForward(Exception):
    pass


@torch.no_grad()
def first_layer_statistics(backbone: nn.Module, dataset: ClipDataset, batch_size: int,
                           device: torch.device, stride: int = 1,
                           kind: str = "moments") -> Tensor:
    """Controller inputs of every clip (statistics `kind`, :func:`first_layer_stats`; the
    forward stops after the first layer)."""
    out: list[Tensor] = []

    def hook(module, args, output):
        out.append(first_layer_stats(output, stride, kind).cpu())
        raise _StopForward

    handle = backbone.first_act.register_forward_hook(hook)
    backbone.eval()
    try:
        for x, _, _ in dataset.batches(batch_size):
            try:
                backbone(x.to(device))
            except _StopForward:
                pass
    finally:
        handle.remove()
    return torch.cat(out)


class TeacherClips:
    """A training split plus the unpruned backbone's logits of each clip.

    :func:`fit` asks the data set for batches ``(x, y, idx)``; this wrapper yields the
    same batches and keeps the teacher logits of the current batch in ``current``, where
    the loss reads them. The backbone is frozen, so its logits are computed once (one
    batched no-grad pass) instead of once per step and epoch.
    """

    def __init__(self, dataset: ClipDataset, teacher: Tensor) -> None:
        self.dataset = dataset
        self.teacher = teacher
        self.current: Tensor | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, batch_size: int, order: Tensor | None = None):
        for x, y, idx in self.dataset.batches(batch_size, order):
            self.current = self.teacher[idx]
            yield x, y, idx


@torch.no_grad()
def teacher_logits(net: AAPNet, dataset: ClipDataset, batch_size: int,
                   device: torch.device) -> Tensor:
    """The unpruned backbone's logits [N, classes] of every clip of `dataset`."""
    net.eval()
    return torch.cat([net.dense(x.to(device)).float().cpu()
                      for x, _, _ in dataset.batches(batch_size)])


BUDGETS = ("target", "quadratic", "ceiling", "weight")


def budget_term(kind: str, ratio: Tensor, point: float, penalty: float) -> Tensor:
    """The MAC term of the loss for expected MAC ratio `ratio` (module docstring)."""
    if kind == "target":                 # pulled to the budget from either side
        return penalty * (ratio - point).abs()
    if kind == "quadratic":              # pulled harder the farther from the budget
        return penalty * (ratio - point) ** 2
    if kind == "ceiling":
        return penalty * torch.relu(ratio - point)
    if kind == "weight":
        return point * ratio
    raise ConfigError(f"config key 'aap.budget' is {kind!r}; allowed: {', '.join(BUDGETS)}")


def aap_loss_fn(aap: dict, smoothing: float, point_value: float,
                teacher: TeacherClips | None = None, latency: nn.Module | None = None) -> LossFn:
    """CE (label `smoothing`) + kd_weight·KD + budget term (module docstring; weights from
    the `aap` section); logs every term per epoch. Teacher logits come from `teacher`
    (precomputed) or, without it, a no-grad pass. With `latency` (a
    :class:`~dance.aap.latency_table.LatencyModel`, ``aap.cost: latency``) the budget is on
    the predicted latency ratio instead of the MAC ratio."""
    kd_t = aap["kd_temperature"]

    def loss_fn(model: AAPNet, x: Tensor, y: Tensor):
        if teacher is not None:
            target = teacher.current.to(x.device)
        else:
            with torch.no_grad():
                target = model.dense(x)
        logits = model(x)
        macs = model.expected_macs_ratio().mean()
        ratio = macs if latency is None else model.expected_latency_ratio(latency).mean()
        ce = F.cross_entropy(logits, y, label_smoothing=smoothing)
        kd = F.kl_div(F.log_softmax(logits / kd_t, 1), F.log_softmax(target / kd_t, 1),
                      log_target=True, reduction="batchmean") * kd_t ** 2
        budget = budget_term(aap["budget"], ratio, point_value, aap["penalty"])
        tau = model.state.tau.detach().mean((0, 1))
        terms = {"ce": float(ce.detach()), "kd": float(kd.detach()),
                 "budget": float(budget.detach()), "macs_ratio_soft": float(macs.detach()),
                 "temperature": model.state.temperature,
                 "tau_fr": float(tau[0]), "tau_ch": float(tau[1]), "tau_fe": float(tau[2])}
        if latency is not None:
            terms["latency_ratio_soft"] = float(ratio.detach())
        return ce + aap["kd_weight"] * kd + budget, logits, terms

    return loss_fn


def take(dataset: ClipDataset, idx: Tensor) -> ClipDataset:
    """`dataset` restricted to the clips `idx` (in place; returns it)."""
    dataset.clips = dataset.clips[idx]
    dataset.labels = dataset.labels[idx]
    dataset.difficulty = dataset.difficulty[idx]
    dataset.meta = [dataset.meta[int(i)] for i in idx]
    return dataset


def aap_schedule(aap: dict, train: dict) -> Schedule:
    """The `train` section's schedule with the `aap` section's epochs, rate, batch size,
    weight decay and optimizer (no warm-up)."""
    sched = replace(Schedule.from_config(train), epochs=aap["epochs"], lr=aap["lr"],
                    batch_size=aap["batch_size"], warmup_epochs=0.0,
                    weight_decay=aap["weight_decay"], lr_key="aap.lr")
    if hasattr(sched, "optimizer"):
        sched = replace(sched, optimizer=aap["optimizer"])
    return sched


def train_aap(cfg: dict, model_name: str, variant: str, point: int) -> Path:
    """Train the controller of one operating point; resumable; returns its checkpoint."""
    check_variant(variant)
    a = cfg["aap"]
    value = check_point(a, point)
    device = runtime.setup(cfg)
    paths = Paths(cfg)
    other = "val" if a["train_split"] == "train" else "train"
    train_set = open_split(cfg, a["train_split"])
    val_set = open_split(cfg, other)
    gen = torch.Generator().manual_seed(cfg["seed"])
    for ds, n in ((train_set, a["train_clips"]), (val_set, a["val_clips"])):
        if n and n < len(ds):
            take(ds, torch.randperm(len(ds), generator=gen)[:n])
    n_cls = train_set.num_classes
    meta = aap_meta(cfg, model_name, variant, point, n_cls)
    torch.manual_seed(cfg["seed"] * 1009 + point)          # controller initialisation
    net = build_net(cfg, model_name, variant, n_cls)
    latency = latency_model(a["cost"], paths, model_name, net.names)
    spec = controller_spec(a, net.backbone, variant, net.macs, latency)
    stats = first_layer_statistics(net.backbone, train_set, cfg["train"]["eval_batch_size"],
                                   device, net.controller.stats_stride,
                                   net.controller.stats)
    net.controller.calibrate(stats)
    sched = aap_schedule(a, cfg["train"])
    net.anneal = (a["temperature"], a["temperature_end"],
                  sched.epochs * math.ceil(len(train_set) / sched.batch_size))
    teacher = TeacherClips(train_set, teacher_logits(net, train_set,
                                                     cfg["train"]["eval_batch_size"], device))
    history = fit(net, teacher, val_set, sched, seed=cfg["seed"], device=device,
                  state_dir=paths.aap_state_dir(model_name, variant, point), meta=meta,
                  loss_fn=aap_loss_fn(a, cfg["train"]["label_smoothing"], value, teacher,
                                      latency),
                  desc=f"{model_name} aap {variant}@{point}")
    write_history(paths.aap_history(model_name, variant, point), history)
    idle = switch_off_idle_decisions(net, val_set, a["min_pruned_share"],
                                     cfg["train"]["eval_batch_size"], device)
    if idle:
        print(f"{model_name} aap {variant}@{point}: switched off {len(idle)} decisions that "
              f"pruned < {a['min_pruned_share']:g} of their entries on the {other} clips: "
              f"{', '.join(idle)}", flush=True)
    out = paths.aap_checkpoint(model_name, variant, point)
    net.to("cpu", memory_format=torch.contiguous_format)
    checkpoint.save(out, {"meta": meta, "model": net.controller.state_dict(),
                          "controller_spec": spec, "history": history,
                          "point_value": value, "budget": a["budget"],
                          "switched_off": idle})
    return out


DIM_NAMES = ("frames", "channels", "features")


def switch_off_idle_decisions(net: AAPNet, dataset: ClipDataset, min_share: float,
                              batch_size: int, device: torch.device) -> list[str]:
    """Switch off every (layer, dimension) whose hard decisions prune less than `min_share`
    of its entries on `dataset`, on average: at batch 1 such a decision costs a profile pass
    and the keep rule per clip (≈ 0.05–0.2 ms) and saves almost no work. Its thresholds are
    forced to 0 from then on (the controller's `mask` buffer, saved with its weights), so the
    masked and pruned paths both keep everything there. Returns "layer:dimension" names."""
    if min_share <= 0:
        return []
    from dance.aap.evaluate import collect

    masks = collect(net, dataset, batch_size, device, dense=False)["masks"]
    idle = []
    mask = net.controller.mask
    for i, name in enumerate(net.names):
        for d, kept in enumerate(masks[name]):
            if mask[i, d] > 0 and 1.0 - float(kept.float().mean()) < min_share:
                mask[i, d] = 0.0
                idle.append(f"{name}:{DIM_NAMES[d]}")
    net.refresh_active()
    return idle
