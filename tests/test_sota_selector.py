"""Pruning-level selection (dance.sota.selector): routing and its cost accounting by hand."""

from __future__ import annotations

import numpy as np
import torch

from dance.sota.selector import FeatureSet, SelectorHead, route, routing_costs
from dance.train.loop import Schedule, fit

AGG = {"macs": 100, "accesses": {"weights_read": 10, "inputs_read": 20, "outputs_written": 5}}
MILD = {"macs": 300, "accesses": {"weights_read": 30, "inputs_read": 40, "outputs_written": 5}}
HEAD = {"macs": 7, "accesses": {"weights_read": 8, "inputs_read": 3, "outputs_written": 2}}


def test_routing_costs_by_hand():
    esc = np.array([False, True, False])
    c = routing_costs(AGG, MILD, HEAD, pooled_elements=50, escalate=esc)
    # aggressive 100 + pooling 50 + head 7 (+ mild 300 when escalated)
    assert c["macs"].tolist() == [157, 457, 157]
    assert c["overhead"].tolist() == [57, 57, 57]
    assert c["accesses"]["weights_read"].tolist() == [18, 48, 18]
    assert c["accesses"]["outputs_written"].tolist() == [7, 12, 7]
    mild_only = routing_costs(AGG, MILD, HEAD, 50, np.ones(3, bool), use_head=False,
                              run_aggressive=False)
    assert mild_only["macs"].tolist() == [300] * 3 and mild_only["overhead"].tolist() == [0] * 3


def test_route_points():
    conf = np.array([0.2, 0.6, 0.9])
    agg_ok = np.array([False, True, True])
    pts = route([0.5, 0.8], conf, agg_ok)
    assert pts["t0.5"]["escalate"].tolist() == [True, False, False]
    assert pts["t0.8"]["escalate"].tolist() == [True, True, False]
    assert pts["oracle"]["escalate"].tolist() == [True, False, False]
    assert not pts["always_aggressive"]["escalate"].any()
    assert pts["always_mild"]["escalate"].all() and not pts["always_mild"]["run_aggressive"]


def test_head_learns_a_separable_target_through_the_training_loop(tmp_path):
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(64, 6, generator=gen)
    target = (feats[:, 0] > 0).long()
    data = FeatureSet(feats, target)
    head = SelectorHead(6, 8)
    head.calibrate(feats)
    sched = Schedule(epochs=15, batch_size=16, lr=0.05, optimizer="adamw",
                     channels_last=False, progress=False)
    hist = fit(head, data, data, sched, seed=0, device=torch.device("cpu"),
               state_dir=tmp_path, meta={"stage": "selector-test"})
    assert hist[-1]["val_top1"] >= 0.9
    conf = head.confidence(feats).detach()
    assert conf[target == 1].mean() > conf[target == 0].mean()
