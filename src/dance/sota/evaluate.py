"""Test-split evaluation of static networks into operating-point records: the dense
baseline (the comparison's reference row) and the fine-tuned L1-pruned nets (the
selector's evaluation lives in :mod:`dance.sota.selector`). Latency comes from the SOTA
bench (:mod:`dance.sota.bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from dance import runtime
from dance.data.dataset import ClipDataset, open_split
from dance.evaluate.classify import predict
from dance.measure.profile import cost_tables
from dance.paths import Paths
from dance.sota import l1
from dance.sota.record import bench_latency, dense_reference, l1_variant, static_costs, write_record


def evaluate_static(cfg: dict, model_name: str, method: str, point: str, net: nn.Module,
                    test: ClipDataset, *, point_value: Any = None, variant: str,
                    notes: str = "", extra: dict | None = None) -> Path:
    """Record of one static network (every clip costs the same)."""
    device = runtime.setup(cfg)
    paths = Paths(cfg)
    logits = predict(net.to(device), test, cfg["train"]["eval_batch_size"], device)
    net = net.cpu()
    bpe = cfg["energy"]["bytes_per_element"]
    costs = static_costs(net, net.clip_shape, bpe)
    return write_record(
        paths.sota_record(model_name, method, point), method=method, model=model_name,
        operating_point=point, point_value=point_value,
        correct=(logits.argmax(1) == test.labels).numpy(), macs=costs["macs"],
        accesses=costs["accesses"], params={point: costs["params"]},
        dense=dense_reference(cfg, model_name, test.num_classes), tables=cost_tables(cfg["energy"]),
        bytes_per_element=bpe, latency=bench_latency(paths, model_name, variant), notes=notes,
        extra={"macs_fvcore": costs["macs_fvcore"], **(extra or {})})


def evaluate_dense(cfg: dict, model_name: str) -> Path:
    """The dense baseline's record (reference row of every comparison)."""
    from dance.models.trained import load_trained

    test = open_split(cfg, "test")
    net = load_trained(cfg, model_name, "baseline", test.num_classes)
    return evaluate_static(cfg, model_name, "dense", "dense", net, test, variant="dense",
                           notes="dense baseline checkpoint, no pruning")


def evaluate_l1(cfg: dict, model_name: str, level: str) -> Path:
    """Record of a fine-tuned L1-pruned net (one static operating point)."""
    test = open_split(cfg, "test")
    net = l1.load_l1(cfg, model_name, level, test.num_classes)
    sec = cfg["sota"]["l1"]
    return evaluate_static(
        cfg, model_name, "l1", level, net, test, point_value=sec[level],
        variant=l1_variant(level),
        notes=f"static L1 filter pruning, {sec[level]:.0%} of conv output channels removed "
              f"(kept counts rounded to multiples of {sec['round_to']}), fine-tuned "
              f"{cfg['ava']['epochs']} epochs from the baseline",
        extra={"channels": l1.kept_channels(net)})
