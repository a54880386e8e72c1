"""Test-split evaluation of the static L1-pruned nets into operating-point records (the
selector's evaluation lives in :mod:`dance.sota.selector`); latency from the SOTA bench
(:mod:`dance.sota.bench`)."""

from __future__ import annotations

from pathlib import Path

from dance import runtime
from dance.data.dataset import ClipDataset
from dance.evaluate.classify import predict
from dance.measure.profile import cost_tables
from dance.paths import Paths
from dance.sota import l1
from dance.sota.bench import bench_latency, l1_variant
from dance.sota.record import dense_reference, static_costs, write_record


def evaluate_l1(cfg: dict, model_name: str, level: str) -> Path:
    """Record of a fine-tuned L1-pruned net (one static operating point)."""
    device = runtime.setup(cfg)
    paths = Paths(cfg)
    test = ClipDataset(paths.data_dir, "test")
    net = l1.load_l1(cfg, model_name, level, test.num_classes)
    logits = predict(net.to(device), test, cfg["train"]["eval_batch_size"], device)
    net = net.cpu()
    bpe = cfg["energy"]["bytes_per_element"]
    costs = static_costs(net, net.clip_shape, bpe)
    dense = dense_reference(cfg, model_name, test.num_classes)
    return write_record(
        paths.sota_record(model_name, "l1", level), method="l1", model=model_name,
        operating_point=level, point_value=cfg["sota"]["l1"][level],
        correct=(logits.argmax(1) == test.labels).numpy(), macs=costs["macs"],
        accesses=costs["accesses"], params={level: costs["params"]}, dense=dense,
        tables=cost_tables(cfg), bytes_per_element=bpe,
        latency=bench_latency(cfg, model_name, l1_variant(level)),
        notes=f"static L1 filter pruning, {cfg['sota']['l1'][level]:.0%} of conv output "
              f"channels removed (rounded to multiples of {cfg['sota']['l1']['round_to']}), "
              f"fine-tuned {cfg['ava']['epochs']} epochs from the baseline",
        extra={"channels": l1.kept_channels(net), "macs_fvcore": costs["macs_fvcore"]})


