"""Dynamic SOTA baselines: FBS-style channel gating and learned frame skipping (semantics,
exact pruned execution, hand-checked MAC accounting, one tiny training run per method)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dance.models import build_model
from dance.nn.fold import fold_batchnorm
from dance.sota import gating as gating_mod
from dance.sota.frame_skip import FrameSkipNet, frame_skip_loss_fn, run_on_kept
from dance.sota.gating import GatedNet, channel_successors, clip_costs

from conftest import stage_schedule, tiny_config


def _model(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = build_model(name, 5, width=0.125, frames=8, size=32).eval()
    for mod in m.modules():             # non-trivial BatchNorm, so folding is exercised
        if isinstance(mod, nn.BatchNorm3d):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.normal_(0, 0.1)
    return m


def _gated(m: nn.Module, density: float, seed: int = 1) -> GatedNet:
    net = GatedNet(copy.deepcopy(m), density).eval()
    gen = torch.Generator().manual_seed(seed)
    for g in net.gates:                  # spread saliencies; some channels get s = 0
        g.predictor.weight.data = torch.randn(g.predictor.weight.shape, generator=gen) * 0.3
        g.predictor.bias.data = torch.rand(g.predictor.bias.shape, generator=gen) * 1.5 - 0.5
    return net


def _reference_gated_logits(m: nn.Module, net: GatedNet, x: torch.Tensor) -> torch.Tensor:
    """The ungated backbone with the gate applied by hooks: each prunable conv's input is
    kept, and the BatchNorm after it is multiplied by s·[s among the k largest and > 0]
    (k largest found by a full sort, not topk)."""
    from dance.nn.fold import conv_bn_pairs

    bns = dict(conv_bn_pairs(m))
    gates = {g.name: g for g in net.gates}
    inputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, g in gates.items():
        conv, bn = m.get_submodule(name), m.get_submodule(bns[name])

        def pre(module, args, name=name):
            inputs[name] = args[0]

        def post(module, args, out, name=name, g=g):
            s = torch.relu(inputs[name].mean((2, 3, 4)) @ g.predictor.weight.T
                           + g.predictor.bias)
            rank = torch.argsort(torch.argsort(s, 1, descending=True), 1)
            gate = s * ((rank < g.k) & (s > 0))
            return out * gate[:, :, None, None, None]

        handles += [conv.register_forward_pre_hook(pre), bn.register_forward_hook(post)]
    try:
        return m(x)
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
@pytest.mark.parametrize("density", [1.0, 0.5])
def test_gated_network_equals_direct_masked_computation(name, density):
    m = _model(name)
    net = _gated(m, density)
    x = torch.randn(3, 3, 8, 32, 32)
    with torch.no_grad():
        got = net(x)
        want = _reference_gated_logits(m, net, x)
        assert torch.equal(net(x, mode="dense"), m(x))     # dense mode = the backbone
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        _, keeps = net.keeps(x)
    for g in net.gates:
        kept = keeps[g.name].sum(1)
        assert (kept <= g.k).all()
        if density == 1.0:   # k = C: every channel with s > 0 kept, output = s · BN(conv(x))
            assert g.k == g.conv.out_channels
    assert not all(bool(k.all()) for k in keeps.values())   # some s = 0 were dropped


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_pruned_gating_equals_masked_and_reads_only_kept_channels(name, monkeypatch):
    m = _model(name)
    net = _gated(m, 0.5)
    fold_batchnorm(net)
    seen: list[tuple[int, int]] = []
    real = gating_mod.conv3d

    def spy(x, w, *args, **kw):
        seen.append((x.shape[1], w.shape[0]))
        return real(x, w, *args, **kw)

    monkeypatch.setattr(gating_mod, "conv3d", spy)
    succ = channel_successors(m)
    pred = {v: k for k, v in succ.items() if v is not None}
    for _ in range(3):
        x = torch.randn(1, 3, 8, 32, 32)
        seen.clear()
        with torch.no_grad():
            lp, kp = net.keeps(x, mode="pruned")
            lm, km = net.keeps(x, mode="masked")
        torch.testing.assert_close(lp, lm, rtol=1e-4, atol=1e-5)
        for n in net.names:
            assert torch.equal(kp[n], km[n]), n
        # each gated conv computed exactly its kept outputs from its predecessor's kept inputs
        for (cin, cout), g in zip(seen, net.gates, strict=True):
            assert cout == int(km[g.name].sum())
            want_in = int(km[pred[g.name]].sum()) if g.name in pred else g.conv.in_channels
            assert cin == want_in, g.name


def test_channel_successors_follow_the_layer_graph():
    c3d = channel_successors(_model("c3d"))
    assert c3d["conv2"] == "conv3a" and c3d["conv4b"] == "conv5a" and c3d["conv5b"] is None
    r3d = channel_successors(_model("r3d18"))
    assert r3d["layer1.0.conv1"] == "layer1.0.conv2"
    assert r3d["layer1.0.conv2"] is None          # feeds the residual sum, never all zero
    assert r3d["layer4.1.conv1"] == "layer4.1.conv2"


def _taps(size: int) -> int:
    """In-bounds taps of a 3-tap, padding-1, stride-1 kernel summed over outputs: 2 at each
    border, 3 inside."""
    return 3 * size - 2 if size > 1 else 1


def test_gating_macs_by_hand():
    m = _model("c3d")
    net = GatedNet(copy.deepcopy(m), 0.5)
    n = 2
    keeps = {g.name: torch.zeros((n, g.conv.out_channels), dtype=torch.bool) for g in net.gates}
    keeps["conv2"][0, :3] = True          # clip 0: conv2 keeps 3 of 16, conv3a 5 of 32
    keeps["conv2"][1, :7] = True          # clip 1: 7 of 16, conv3a 1 of 32
    keeps["conv3a"][0, :5] = True
    keeps["conv3a"][1, 4:5] = True
    for name in net.names[2:]:
        keeps[name][:, :2] = True
    costs = clip_costs(net, keeps)
    # conv2 reads conv1's 8 channels at 8×16×16; conv3a reads 16 channels at 4×8×8
    # (pool2 halves T, H, W); kept in × kept out × in-bounds taps of every output position.
    conv2_taps = _taps(8) * _taps(16) * _taps(16)
    conv3a_taps = _taps(4) * _taps(8) * _taps(8)
    assert costs["layer_macs"]["conv2"].tolist() == [conv2_taps * 8 * 3, conv2_taps * 8 * 7]
    assert costs["layer_macs"]["conv3a"].tolist() == [conv3a_taps * 3 * 5, conv3a_taps * 7 * 1]
    # conv3b reads conv3a's kept channels (5, then 1) and writes 2
    conv3b_taps = conv3a_taps
    assert costs["layer_macs"]["conv3b"].tolist() == [conv3b_taps * 5 * 2, conv3b_taps * 1 * 2]
    # accesses of conv3a: weights kept_out × kept_in × 27, inputs kept_in × 4·8·8
    layer = sum(costs["layer_macs"].values())
    assert (costs["macs"] == net.macs["fixed_macs"] + layer).all()
    # predictors: kept inputs × Cout per gated conv (clip 0 reads 8, 3, 5, 2, 2, 2, 2)
    couts = [g.conv.out_channels for g in net.gates]
    assert costs["predictor_macs"][0] == sum(
        k * c for k, c in zip([8, 3, 5, 2, 2, 2, 2], couts, strict=True))


def test_gating_macs_r3d_second_conv_saves_only_its_outputs():
    m = _model("r3d18")
    net = GatedNet(copy.deepcopy(m), 0.5)
    keeps = {g.name: torch.ones((1, g.conv.out_channels), dtype=torch.bool) for g in net.gates}
    keeps["layer1.0.conv2"][0, 1:] = False            # keeps 1 of 8 output channels
    dense = clip_costs(net, {k: torch.ones_like(v) for k, v in keeps.items()})
    costs = clip_costs(net, keeps)
    i = net.names.index("layer1.0.conv2")
    full = net.macs["layer_macs"][i]
    assert costs["layer_macs"]["layer1.0.conv2"][0] == full // 8
    # the next block's conv1 still reads all 8 channels (residual sum)
    assert costs["layer_macs"]["layer1.1.conv1"][0] == net.macs["layer_macs"][i + 1]
    assert dense["macs"][0] == net.macs["total"]
    assert costs["accesses"]["outputs_written"][0] == (
        dense["accesses"]["outputs_written"][0] - 7 * 8 * 16 * 16)


# --- frame skipping ---------------------------------------------------------------------


def _frame_net(name: str) -> tuple[nn.Module, FrameSkipNet]:
    m = _model(name)
    net = FrameSkipNet(copy.deepcopy(m), keep_init=0.5, downsample=2).eval()
    torch.manual_seed(3)
    nn.init.normal_(net.policy.net[2].weight, 0, 2.0)
    net.policy.calibrate(net.frame_features(_clips(16)))
    return m, net


def _clips(n: int) -> torch.Tensor:
    """Random clips whose frames differ in brightness and contrast (so frames differ)."""
    gen = torch.Generator().manual_seed(n)
    scale = torch.rand((n, 1, 8, 1, 1), generator=gen) * 2
    shift = torch.randn((n, 1, 8, 1, 1), generator=gen)
    return torch.randn((n, 3, 8, 32, 32), generator=gen) * scale + shift


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_frame_skip_runs_the_backbone_on_the_kept_frames(name):
    m, net = _frame_net(name)
    x = _clips(6)
    with torch.no_grad():
        out = net(x)
        keep = net.last_keep
        again = net.decide(x)
    assert set(keep.unique().tolist()) <= {0.0, 1.0}        # hard at inference
    assert torch.equal(keep, again)                         # and deterministic
    assert (keep.sum(1) >= 1).all() and len(set(keep.sum(1).tolist())) > 1
    for i in range(len(x)):
        idx = keep[i].nonzero().squeeze(1)
        with torch.no_grad():
            ref = m(x[i: i + 1, :, idx])
        torch.testing.assert_close(out[i: i + 1], ref, rtol=1e-4, atol=1e-5)


def test_frame_skip_keeps_one_frame_and_trains_the_policy():
    m, net = _frame_net("c3d")
    x = torch.randn(4, 3, 8, 32, 32)
    with torch.no_grad():
        net.policy.net[2].bias.copy_(torch.tensor([10.0, -10.0]))    # skip everything
        net(x)
    assert net.last_keep.sum(1).tolist() == [1.0] * 4
    with torch.no_grad():
        net.policy.net[2].bias.copy_(torch.tensor([0.0, 0.0]))
    net.train()
    loss, logits, terms = frame_skip_loss_fn("target", 0.25, 5.0)(net, x, torch.arange(4))
    loss.backward()
    assert set(net.last_keep.detach().unique().tolist()) <= {0.0, 1.0}
    assert net.policy.net[0].weight.grad.abs().sum() > 0
    assert terms["kept_fraction"] == pytest.approx(float(net.last_keep.detach().mean()))
    assert net.backbone.first_conv.weight.grad is not None   # backbone is fine-tuned too


def test_run_on_kept_groups_and_restores_order():
    calls = []

    class Probe(nn.Module):
        def forward(self, x):
            calls.append(x.shape[2])
            return x.mean((2, 3, 4))[:, :1] * 0 + x[:, 0, :, 0, 0].sum(1, keepdim=True)

    x = torch.arange(3 * 4, dtype=torch.float32).view(3, 1, 4, 1, 1).expand(3, 2, 4, 1, 1)
    keep = torch.tensor([[1.0, 0, 1, 0], [1, 1, 1, 1], [0, 0, 1, 1]])
    out = run_on_kept(Probe(), x.contiguous(), keep)
    assert sorted(calls) == [2, 4]                      # one call per kept count
    assert out[:, 0].tolist() == [0 + 2, 4 + 5 + 6 + 7, 10 + 11]


# --- training and the record (one tiny fine-tuning per method) -------------------------


@pytest.mark.slow
def test_one_epoch_per_method_writes_records(tmp_path):
    from dance.data import prepare
    from dance.evaluate.run import evaluate_stage
    from dance.paths import Paths
    from dance.sota import dynamic
    from dance.sota.record import read_record
    from dance.train.baseline import train_baseline

    cfg = tiny_config(tmp_path, models=["c3d"], train={"epochs": 1}, ava={"epochs": 1},
                      sota={"gating": {"points": [0.5]}, "frame_skip": {"points": [0.5]}},
                      bench={"clips": 1, "repeats": 1, "warmup": 0})
    prepare(cfg, progress=False)
    train_baseline(cfg, "c3d")
    evaluate_stage(cfg, "c3d", "baseline")
    paths = Paths(cfg)
    for method, rname in (("gating", "fbs"), ("frame_skip", "frame_skip")):
        ckpt = dynamic.train(cfg, "c3d", method, 0)
        assert ckpt == paths.checkpoint("c3d", f"{method}@0")
        assert paths.history("c3d", f"{method}@0").exists()
        out = dynamic.evaluate(cfg, "c3d", method, 0)
        rec = read_record(out)
        assert rec["method"] == rname and rec["clips"] == 10 and rec["point_value"] == 0.5
        assert rec["latency"]["median_ms"] > 0 and rec["sources"]["latency"] == "measured"
        assert rec["extra"]["max_abs_logit_diff_timed_vs_batched"] < 1e-3
        assert 0 < rec["macs"]["overhead_mean"] < rec["macs"]["clip_mean"]
        clips = paths.sota_dynamic_clips("c3d", rname, 0).read_text().splitlines()
        assert len(clips) == 11
        if method == "gating":
            assert rec["macs"]["ratio_mean"] < 0.7           # d = 0.5 in every gated conv
    # a checkpoint trained for another operating point value is refused
    from dance.errors import CheckpointError

    other = tiny_config(tmp_path, models=["c3d"], train={"epochs": 1}, ava={"epochs": 1},
                        sota={"gating": {"points": [0.25]}})
    with pytest.raises(CheckpointError):
        dynamic.load(other, "c3d", "gating", 0, 10)


def test_lr_scale_gives_new_parameters_their_own_rate():
    from dance.train.loop import Schedule, make_optimizer

    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    sched = Schedule(epochs=1, batch_size=1, lr=0.1, optimizer="adamw", weight_decay=0.01)
    plain = make_optimizer(model, sched)
    assert len(plain.param_groups) == 2 and "lr_scale" not in plain.param_groups[0]
    for p in model[1].parameters():
        p.lr_scale = 20.0
    groups = make_optimizer(model, sched).param_groups
    assert [len(g["params"]) for g in groups] == [1, 1, 1, 1]
    assert [g.get("lr_scale", 1.0) for g in groups] == [1.0, 1.0, 20.0, 20.0]
    assert groups[2]["params"][0] is model[1].weight and groups[3]["weight_decay"] == 0.0


def test_sota_epochs_sets_every_compared_methods_budget_and_identity_only(monkeypatch):
    """Issue 23.2: the compared methods' fine-tuning budget is a key of its own (AVA's epochs
    when unset); it re-plans the compared methods, never AVA."""
    from dance import config as config_mod
    from dance.identity import stage_identity
    from dance.sota import dynamic, l1

    def epochs(cfg, method):
        if method == "l1":
            return stage_schedule(monkeypatch, l1, l1.train_l1, cfg, "c3d", "mild").epochs
        return stage_schedule(monkeypatch, dynamic, dynamic.train, cfg, "c3d", method, 0).epochs

    base = config_mod.validate({"ava": {"epochs": 2}})
    longer = config_mod.validate({"ava": {"epochs": 2},
                                  "sota": {"epochs": 5, "gating": {"lr": 0.01}}})
    assert epochs(base, "gating") == epochs(base, "l1") == 2
    for method in ("gating", "frame_skip", "l1"):
        assert epochs(longer, method) == 5
    sched = stage_schedule(monkeypatch, dynamic, dynamic.train, longer, "c3d", "gating", 0)
    assert (sched.lr, sched.lr_key) == (0.01, "sota.gating.lr")      # the method's own rate
    for stage in ("l1_mild", "l1_aggressive", "gating@0", "frame_skip@2"):
        assert stage_identity(base, "c3d", stage) != stage_identity(longer, "c3d", stage)
    assert stage_identity(base, "c3d", "ava") == stage_identity(longer, "c3d", "ava")
