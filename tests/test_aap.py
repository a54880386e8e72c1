"""AAP: pruning function, pruned execution (== masked reference, without the dropped work),
controller, MAC accounting, soft/hard consistency, training, evaluation outputs."""

from __future__ import annotations

import copy
import csv
import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from dance.aap import execute
from dance.aap.controller import Controller, first_layer_stats, stats_ops
from dance.aap.evaluate import batch_effective_macs
from dance.aap.execute import PrunedConv
from dance.aap.model import AAPNet
from dance.aap.prune import apply_masks, hard_masks, soft_gates
from dance.measure.macs import effective_conv_macs
from dance.models import build_model
from dance.nn import use_fast_convs
from dance.nn.fold import fold_batchnorm, prepare_for_timing, trim_padding_taps

from conftest import copy_trained, tiny_config

# --- the pruning function -------------------------------------------------------------------


def _tau(*values):
    return torch.tensor([values], dtype=torch.float32)


def test_tau_zero_keeps_everything():
    a = torch.rand(3, 5, 4, 6, 6) * (torch.rand(3, 5, 4, 6, 6) > 0.3)
    fr, ch, fe = hard_masks(a, torch.zeros(3, 3))
    assert fr.all() and ch.all() and fe.all()
    conv = nn.Conv3d(5, 2, 3, padding=1)
    out, decision = PrunedConv(conv)(a[:1], (0.0, 0.0, 0.0))
    assert decision == (None, None, None)
    torch.testing.assert_close(out, conv(a[:1]), atol=1e-5, rtol=1e-5)


def test_known_profile_frames_then_channels_then_features():
    # C=2, T=4, H=W=2. Frame sums: [8, 2, 2, 4] (total 16): with τ_FR = 1 a frame is kept
    # iff 4·s ≥ 16, i.e. frames 0 and 3. Channel 1 is large only in the dropped frame 1:
    # over all frames it would win, over the kept frames channel 0 does.
    a = torch.zeros(1, 2, 4, 2, 2)
    a[0, 0, 0] = 2.0          # frame 0: channel 0, all 4 positions -> 8
    a[0, 1, 1] = 0.5          # frame 1: channel 1 -> 2
    a[0, 1, 1, 0, 0] = 0.5    # (sum stays 2: overwrite one cell with the same value)
    a[0, 1, 2, 1, 1] = 2.0    # frame 2: one position of channel 1 -> 2
    a[0, 0, 3, 0, 0] = 3.0    # frame 3: channel 0 at (0,0) 3, channel 1 at (1,0) 1 -> 4
    a[0, 1, 3, 1, 0] = 1.0
    fr, ch, fe = hard_masks(a, _tau(1.0, 1.0, 1.0))
    assert fr[0].tolist() == [True, False, False, True]
    # channel sums over kept frames: c0 = 8 + 3 = 11, c1 = 1 -> 2·s ≥ 12 keeps c0 only
    assert ch[0].tolist() == [True, False]
    # features over kept frames × channel 0: (0,0) 2+3=5, (0,1) 2, (1,0) 2, (1,1) 2 (total
    # 11): 4·s ≥ 11 keeps (0,0) only
    assert fe[0].tolist() == [[True, False], [False, False]]
    # with τ = 0.5 the same function keeps what has at least half the uniform share
    fr, ch, fe = hard_masks(a, _tau(0.5, 0.5, 0.5))
    assert fr[0].tolist() == [True, True, True, True]     # 4·2 ≥ 8
    # the pruned path takes the same decisions (numpy twin)
    frames, channels, features = PrunedConv(nn.Conv3d(2, 1, 3, padding=1))(a, (1.0, 1.0, 1.0))[1]
    assert frames == [0, 3] and channels.tolist() == [0]
    assert features.bool().tolist() == [[True, False], [False, False]]


def test_argmax_is_always_kept():
    a = torch.rand(4, 6, 5, 3, 3)
    fr, ch, fe = hard_masks(a, torch.full((4, 3), 50.0))
    assert (fr.sum(1) == 1).all() and (ch.sum(1) == 1).all() and (fe.flatten(1).sum(1) == 1).all()
    assert torch.equal(fr.float().argmax(1), a.sum((1, 3, 4)).argmax(1))
    zero = torch.zeros(1, 3, 2, 2, 2)        # a dead input keeps everything (0 ≥ τ·0)
    fr, ch, fe = hard_masks(zero, _tau(1.0, 1.0, 1.0))
    assert fr.all() and ch.all() and fe.all()


def test_channel_rounding_keeps_multiples_and_the_threshold_set():
    a = torch.rand(6, 20, 3, 4, 4) ** 4
    tau = torch.rand(6, 3) * 2
    plain = hard_masks(a, tau)[1]
    rounded = hard_masks(a, tau, channel_multiple=8)[1]
    assert (rounded | plain).eq(rounded).all()                    # superset
    counts = rounded.sum(1)
    assert ((counts % 8 == 0) | (counts == 20)).all()


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("nonneg", [True, False])
def test_numpy_decisions_match_the_batched_rule(channels_last, nonneg):
    """Every combination of active decisions (a threshold at 0 decides nothing), in both
    memory formats: with no channel decision the frame and feature profiles come from one
    reduction over the channels, otherwise from the [C,T] profile and the kept parts."""
    g = torch.Generator().manual_seed(1)
    conv = nn.Conv3d(16, 4, 3, padding=1)
    plan = PrunedConv(conv, nonneg=nonneg, channel_multiple=4)
    for active in itertools.product([0.0, 1.0], repeat=3):
        for _ in range(8):
            a = torch.relu(torch.randn(1, 16, 6, 5, 5, generator=g)) ** 2
            if not nonneg:
                a = a * torch.sign(torch.randn(a.shape, generator=g))
            if channels_last:
                a = a.contiguous(memory_format=torch.channels_last_3d)
            tau = torch.rand(1, 3, generator=g) * 2 * torch.tensor(active)
            fr, ch, fe = hard_masks(a.abs(), tau, channel_multiple=4)
            frames, channels, features = plan(a, tau[0].tolist())[1]
            got = execute.masks_from_decision(a.shape, frames, channels, features)
            assert torch.equal(got[0], fr[0]) and torch.equal(got[1], ch[0]), active
            assert torch.equal(got[2], fe[0]), active


# --- pruned execution == masked reference, without dropped work ---------------------------


@pytest.fixture
def fed(monkeypatch) -> list[tuple[int, ...]]:
    """Input shapes of every conv the pruned path runs (a spy on its `conv3d`)."""
    shapes: list[tuple[int, ...]] = []
    real = execute.conv3d

    def spy(x, *args, **kwargs):
        shapes.append(tuple(x.shape))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(execute, "conv3d", spy)
    return shapes


@pytest.mark.parametrize("mode", ["compact", "taps"])
def test_single_conv_equals_masked_for_every_frame_subset(mode):
    torch.manual_seed(0)
    cases = [((3, 3, 3), (1, 1, 1), (1, 1, 1)), ((3, 3, 3), (2, 2, 2), (1, 1, 1)),
             ((1, 3, 3), (1, 1, 1), (0, 1, 1)), ((3, 3, 3), (2, 1, 1), (0, 1, 1)),
             ((5, 3, 3), (2, 1, 1), (2, 1, 1)), ((5, 3, 3), (1, 1, 1), (2, 1, 1)),
             ((3, 3, 3), (1, 1, 1), (0, 1, 1)), ((5, 3, 3), (1, 1, 1), (1, 1, 1))]
    for k, s, p in cases:
        conv = nn.Conv3d(4, 3, k, s, p, bias=True)
        plan = PrunedConv(conv, frame_exec=mode)
        for t in range(1, 7):
            if t + 2 * p[0] < k[0]:
                continue
            x = torch.rand(1, 4, t, 5, 5)
            for r in range(1, t):
                for kept in itertools.combinations(range(t), r):
                    m = torch.zeros(t)
                    m[list(kept)] = 1
                    ch = torch.tensor([0, 2])
                    ref = conv(x * m.view(1, 1, t, 1, 1) * torch.tensor([1., 0, 1, 0]).view(1, 4, 1, 1, 1))
                    out, _ = plan(x, decision=(list(kept), ch, None))
                    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_a_run_of_kept_frames_is_convolved_in_place_and_keeps_channels_last(fed):
    """One contiguous run of kept frames (stride 1): the conv reads exactly the run's
    frames (a view of the input: nothing gathered or zeroed), the output keeps the input's
    channels_last_3d format, and it equals the masked reference with a feature window too.
    Before, the run went through a gathered copy with its zero neighbours, and the output
    came back in the standard format."""
    gen = torch.Generator().manual_seed(3)
    for k, p in (((3, 3, 3), (1, 1, 1)), ((5, 3, 3), (1, 1, 1)), ((3, 1, 1), (0, 0, 0))):
        conv = nn.Conv3d(6, 4, k, 1, p, bias=True)
        plan = PrunedConv(conv)
        x = torch.rand(1, 6, 8, 10, 10, generator=gen).contiguous(
            memory_format=torch.channels_last_3d)
        fe = _blob(10, 10, 2, 5, 3, 7, gen)
        for kept in ([2, 3, 4, 5], [0, 1, 2], [5, 6, 7], [4]):
            for features in (None, fe):
                m = torch.zeros(8)
                m[kept] = 1
                ref = conv(x * m.view(1, 1, 8, 1, 1) * (1.0 if features is None else features))
                fed.clear()
                before = x.clone()
                out, _ = plan(x, decision=(kept, None, features))
                torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
                torch.testing.assert_close(x, before, atol=0, rtol=0)   # input untouched
                assert [f[2] for f in fed] == [len(kept)], (k, kept, fed)
                assert execute.is_channels_last(out), (k, kept)


def _blob(h: int, w: int, r0: int, r1: int, c0: int, c1: int, gen) -> torch.Tensor:
    """Feature mask keeping a random subset of the box [r0:r1, c0:c1] (its corners kept)."""
    m = torch.zeros(h, w)
    m[r0:r1, c0:c1] = (torch.rand(r1 - r0, c1 - c0, generator=gen) < 0.6).float()
    m[r0, c0] = m[r1 - 1, c1 - 1] = 1.0
    return m


@pytest.mark.parametrize("mode", ["compact", "taps"])
def test_feature_window_equals_masked_and_convolves_only_the_window(mode, fed):
    """A compact feature blob: the conv runs over the blob's window only (the outputs that
    read the blob, and the inputs they read) and the output, bias outside the
    window included, equals the masked reference, at every border and stride."""
    gen = torch.Generator().manual_seed(0)
    cases = [((3, 3, 3), (1, 1, 1), (1, 1, 1)), ((3, 3, 3), (2, 2, 2), (1, 1, 1)),
             ((1, 3, 3), (1, 1, 1), (0, 1, 1)), ((1, 1, 1), (1, 2, 2), (0, 0, 0)),
             ((3, 5, 5), (1, 2, 2), (1, 2, 2))]
    boxes = [(0, 3, 0, 4), (5, 9, 4, 8), (13, 16, 12, 16), (6, 7, 0, 16)]
    for k, s, p in cases:
        conv = nn.Conv3d(4, 3, k, s, p, bias=True)
        plan = PrunedConv(conv, frame_exec=mode)
        x = torch.rand(1, 4, 6, 16, 16, generator=gen)
        for box in boxes:
            fe = _blob(16, 16, *box, gen)
            for kept in ([0, 1, 2, 3, 4, 5], [1, 2, 4]):
                fm = torch.zeros(6)
                fm[kept] = 1
                ref = conv(x * fm.view(1, 1, 6, 1, 1) * fe)
                fed.clear()
                out, _ = plan(x, decision=(None if len(kept) == 6 else kept, None, fe))
                torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
                # outputs: the blob grown by the kernel's reach; inputs: what they read
                rows = box[1] - box[0] + 2 * (k[1] - 1)
                cols = box[3] - box[2] + 2 * (k[2] - 1)
                assert all(f[3] <= rows and f[4] <= cols for f in fed), (k, s, box, fed)


def test_pruned_conv_keeps_channels_last_inputs_in_that_format():
    """A channels_last_3d clip stays in that format through the window and the unpruned
    path (mixing formats makes oneDNN reorder per call), with the masked reference's output."""
    gen = torch.Generator().manual_seed(2)
    conv = nn.Conv3d(8, 6, 3, 1, 1, bias=True)
    plan = PrunedConv(conv)
    x = torch.rand(1, 8, 4, 12, 12, generator=gen).contiguous(memory_format=torch.channels_last_3d)
    fe = _blob(12, 12, 2, 6, 3, 8, gen)
    for decision, keeps_format in (((None, None, fe), True), ((None, None, None), True),
                                   ((None, torch.tensor([0, 2, 5]), fe), False)):
        ch = torch.zeros(8)
        ch[decision[1] if decision[1] is not None else slice(None)] = 1
        ref = conv(x * ch.view(1, 8, 1, 1, 1) * (fe if decision[2] is not None else 1.0))
        out, _ = plan(x, decision=decision)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
        if keeps_format:
            assert execute.is_channels_last(out)


@pytest.mark.parametrize("channels", [5, 40])       # both orders of the [H,W] profile
def test_sum_in_memory_order_equals_sum(channels):
    a = torch.rand(1, channels, 3, 4, 6).contiguous(memory_format=torch.channels_last_3d)[0]
    for dims in ((2, 3), (0, 1), (1,), (0, 2, 3)):
        torch.testing.assert_close(execute.sum_in_memory_order(a, dims), a.sum(dims))
        torch.testing.assert_close(execute.sum_in_memory_order(a.contiguous(), dims), a.sum(dims))


def _big_logits(model: nn.Module) -> nn.Module:
    """Random-init linear layers are N(0, 0.01): re-draw them (Kaiming) so that logits are
    O(1) and a wrong pruned path shows up in them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def _random_masks(net: AAPNet, gen: torch.Generator, batch: int = 1, blob: bool = False):
    """Random keep masks per layer; with `blob`, features kept only in a random box (the
    learned masks' shape, which the pruned path convolves as a window)."""
    masks = {}
    for name, (c, t, h, w) in zip(net.names, net.macs["in_shapes"], strict=True):
        fr = torch.rand(batch, t, generator=gen) < 0.7
        if t > 2:
            fr[:, 0] = False                       # dropped first and last frames (borders)
            fr[:, -1] = False
        fr[:, torch.randint(0, t, (1,), generator=gen)] = True
        ch = torch.rand(batch, c, generator=gen) < 0.7
        ch[:, 0] = True
        fe = torch.rand(batch, h, w, generator=gen) < 0.8
        fe[:, 0, 0] = True
        if blob and h >= 8:
            r0, c0 = (int(v) for v in torch.randint(0, h // 2, (2,), generator=gen))
            fe = torch.stack([_blob(h, w, r0, r0 + h // 2, c0, c0 + w // 2, gen).bool()
                              for _ in range(batch)])
        masks[name] = (fr, ch, fe)
    return masks


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
@pytest.mark.parametrize("prepared", [False, True])
def test_pruned_network_equals_masked_network(name, prepared):
    # 8 frames: C3D reaches T = 1 at conv5 and R3D has stride-2 convs and T = 1 in layer4.
    torch.manual_seed(0)
    model = _big_logits(build_model(name, 5, width=0.125, frames=8, size=32)).eval()
    if prepared:                                  # the bench's network: BN folded, taps trimmed
        prepare_for_timing(model)
    use_fast_convs(model)
    gen = torch.Generator().manual_seed(3)
    for mode in ("compact", "taps"):
        ref = AAPNet(copy.deepcopy(model), None)
        pruned = AAPNet(copy.deepcopy(model), None, eval_mode="pruned", frame_exec=mode)
        for net in (ref, pruned):
            net.state.fixed_tau = torch.zeros(len(net.names), 3)
        for i in range(4):
            masks = _random_masks(ref, gen, blob=i >= 2)
            ref.state.forced = pruned.state.forced = masks
            x = torch.randn(1, 3, 8, 32, 32, generator=gen)
            with torch.no_grad():
                a, b, dense = ref(x), pruned(x), ref(x, mode="off")
            scale = float(a.abs().max())
            assert scale > 1e-5 and float((dense - a).abs().max()) > 0.05 * scale  # masks matter
            assert float((b - a).abs().max()) <= 1e-4 * scale
        # thresholds instead of forced masks: the pruned path decides itself
        ref.state.forced = pruned.state.forced = {}
        tau = torch.rand(len(ref.names), 3, generator=gen) * 1.5
        ref.state.fixed_tau = pruned.state.fixed_tau = tau
        x = torch.randn(1, 3, 8, 32, 32, generator=gen)
        with torch.no_grad():
            a, b = ref(x), pruned(x)
        assert float((b - a).abs().max()) <= 1e-4 * float(a.abs().max())


def test_pruned_path_feeds_no_dropped_frame_or_channel_to_a_conv(fed):
    """Spy on every conv of the pruned path: in `taps` mode each conv reads exactly the kept
    frames × kept channels (no zero data); in `compact` mode only kept channels and at most
    kT − 1 zero frames per gap of dropped frames."""
    torch.manual_seed(0)
    model = use_fast_convs(build_model("c3d", 5, width=0.125, frames=8, size=32).eval())
    gen = torch.Generator().manual_seed(0)
    for mode in ("taps", "compact"):
        net = AAPNet(copy.deepcopy(model), None, eval_mode="pruned", frame_exec=mode)
        net.state.fixed_tau = torch.zeros(len(net.names), 3)
        masks = _random_masks(net, gen)
        net.state.forced = masks
        fed.clear()
        with torch.no_grad():
            net(torch.randn(1, 3, 8, 32, 32))
        assert len(fed) >= len(net.names)
        calls = iter(fed)
        for name, shape in zip(net.names, net.macs["in_shapes"], strict=True):
            fr, ch, _ = (m[0] for m in masks[name])
            kept_f, kept_c = int(fr.sum()), int(ch.sum())
            got = next(calls)
            assert got[1] == kept_c, (name, got)
            idx = fr.nonzero().squeeze(1).tolist()
            one_run = idx[-1] - idx[0] + 1 == kept_f     # read in place (stride-1 convs)
            if mode == "taps" or kept_f == shape[1] or one_run:
                assert got[2] == kept_f, (name, got, kept_f)
            else:
                gaps = [b - a - 1 for a, b in zip(idx, idx[1:], strict=False)]
                limit = kept_f + sum(min(g, 2) for g in gaps) + 2
                assert kept_f <= got[2] <= min(limit, shape[1]), (name, got, idx)


# --- controller, MACs, soft vs hard -------------------------------------------------------


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_controller_costs_well_under_one_percent(name):
    model = build_model(name, 10, width=0.25, frames=8, size=64).eval()
    net = AAPNet(model, None)
    a1 = (16, 8, 64, 64) if name == "c3d" else (16, 8, 32, 32)
    ctrl = Controller(a1[0], a1[1], len(net.names), hidden=64, tau_max=2.0, tau_init=0.2)
    assert ctrl.macs() / net.macs["total"] < 0.01 * 0.1          # ≪ 1%
    assert stats_ops(a1) / net.macs["total"] < 0.01
    stats = first_layer_stats(torch.rand(2, *a1))
    assert stats.shape == (2, ctrl.in_features)


@pytest.mark.parametrize("shape", [(2, 16, 8, 32, 32), (3, 5, 3, 5, 7)])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_first_layer_stats_are_the_same_in_both_memory_formats(shape, stride):
    """Every `stride`-th row and column (aap.stats_stride), in either memory format."""
    a = torch.rand(*shape, generator=torch.Generator().manual_seed(1)) * 3
    n, c, t = shape[:3]
    sub = a.double()[:, :, :, ::stride, ::stride]
    flat = sub.reshape(n, c, -1)
    want = torch.cat([flat.mean(2), flat.std(2, unbiased=False), flat.amax(2),
                      sub.mean((1, 3, 4))], 1)
    for x in (a, a.contiguous(memory_format=torch.channels_last_3d)):
        got = first_layer_stats(x, stride)
        assert got.shape == (n, 3 * c + t)
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    assert stats_ops(shape[1:], stride) == 3 * c * t * flat.shape[2] // t


@pytest.mark.parametrize("shape", [(2, 16, 8, 32, 32), (3, 5, 3, 5, 7)])
@pytest.mark.parametrize("stride", [1, 2])
def test_sums_statistics_are_the_mean_of_every_channel_frame_map(shape, stride):
    """aap.stats: sums = [N, C·T] channel-major means of each (strided) (channel, frame)
    map, in either memory format; one element operation per element read."""
    a = torch.rand(*shape, generator=torch.Generator().manual_seed(2)) * 3
    n, c, t = shape[:3]
    sub = a.double()[:, :, :, ::stride, ::stride]
    want = sub.mean((3, 4)).reshape(n, c * t)
    for x in (a, a.contiguous(memory_format=torch.channels_last_3d)):
        got = first_layer_stats(x, stride, "sums")
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    assert stats_ops(shape[1:], stride, "sums") * 3 == stats_ops(shape[1:], stride)
    assert Controller(c, t, 2, hidden=4, tau_max=1.0, tau_init=0.2,
                      stats="sums").in_features == c * t
    with pytest.raises(ValueError, match="moments, sums"):
        first_layer_stats(a, stride, "medians")
    with pytest.raises(ValueError, match="moments, sums"):
        Controller(c, t, 2, hidden=4, tau_max=1.0, tau_init=0.2, stats="medians")


class _ReductionSpy(torch.overrides.TorchFunctionMode):
    """Records (op, contiguous input, dims) of every amax/sum/vector_norm call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bool, object]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name in ("amax", "sum", "vector_norm") and args and isinstance(args[0], torch.Tensor):
            dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
            if name == "vector_norm":
                dims = kwargs.get("dim", args[2] if len(args) > 2 else None)
            self.calls.append((name, args[0].is_contiguous() or args[0].is_contiguous(
                memory_format=torch.channels_last_3d), dims))
        return func(*args, **kwargs)


@pytest.mark.parametrize("stride", [1, 2])
def test_first_layer_stats_reduce_contiguous_rows_in_the_standard_format(stride):
    """A strided standard-format view (aap.stats_stride 2) is copied to contiguous rows
    before it is reduced: amax and the norm over three dimensions of the strided view took
    0.72 and 0.08 ms at batch 1 (C3D, 2 threads), 11x the copy and the reductions of its
    rows, and made every DANCE point 15% slower than dense with nothing pruned. Failed
    before: the view itself was reduced over (2, 3, 4)."""
    a = torch.rand(1, 16, 8, 16, 16)
    with _ReductionSpy() as spy:
        first_layer_stats(a, stride)
    assert spy.calls
    strided = [(name, dims) for name, contiguous, dims in spy.calls if not contiguous]
    assert strided == [], strided


class _OpCounter(TorchDispatchMode):
    """Counts the ATen ops run while active (at batch 1 a step's cost here is its count of
    op calls more than their arithmetic)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.__name__.split(".")[0])
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("kind", ["moments", "sums"])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_controller_inference_equals_its_training_path_and_follows_weight_changes(
        channels_last, stride, kind):
    """Without gradients the controller folds its linear steps into its two layers (fewer
    op calls per clip); the thresholds equal the training path's, and the fold follows every
    change of the weights, the standardisation and the mask made in place (the bench's
    probes scale the mask; loading a checkpoint copies into the parameters). A stale fold
    would give the old thresholds."""
    gen = torch.Generator().manual_seed(3)
    ctrl = Controller(6, 4, 5, hidden=16, tau_max=1.5, tau_init=0.2, stats_stride=stride,
                      stats=kind)
    nn.init.normal_(ctrl.net[2].weight, 0.0, 0.5, generator=gen)
    a = torch.rand(2, 6, 4, 10, 10, generator=gen) * torch.rand(1, 6, 1, 1, 1, generator=gen)
    if channels_last:
        a = a.contiguous(memory_format=torch.channels_last_3d)
    ctrl.calibrate(torch.cat([first_layer_stats(a, stride, kind),
                              first_layer_stats(a * 1.3, stride, kind)]))

    def both():
        with torch.enable_grad():
            ref = ctrl(a).detach()
        with torch.no_grad():
            return ref, ctrl(a)

    ref, fast = both()
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=1e-5)
    with torch.no_grad(), _OpCounter() as ops:
        ctrl(a)
    with _OpCounter() as training_ops:
        ctrl(a)
    assert len(ops.names) < len(training_ops.names)
    changes = [lambda: ctrl.mask[1].zero_(), lambda: ctrl.mask.mul_(0.5),
               lambda: ctrl.net[0].weight.mul_(-1.0), lambda: ctrl.sigma.mul_(2.0),
               lambda: ctrl.load_state_dict({k: v + 0.1 if v.is_floating_point() else v
                                             for k, v in ctrl.state_dict().items()})]
    for change in changes:
        with torch.no_grad():
            change()
        ref_changed, fast_changed = both()
        assert not torch.allclose(ref_changed, ref)
        torch.testing.assert_close(fast_changed, ref_changed, atol=2e-5, rtol=1e-5)
        ref = ref_changed


def test_sums_statistics_run_fewer_op_calls_than_the_moments():
    """The point of aap.stats: sums: in the network each op call costs 3-5x its cost alone,
    so the controller's cost is its count of calls. One reduction instead of four plus the
    std arithmetic and the concatenation."""
    a = torch.rand(1, 6, 4, 10, 10)
    counts = {}
    for kind in ("moments", "sums"):
        ctrl = Controller(6, 4, 5, hidden=16, tau_max=1.5, tau_init=0.2, stats=kind).eval()
        with torch.no_grad():
            ctrl(a)                                       # fold cached
            with _OpCounter() as ops:
                ctrl(a)
        counts[kind] = ops.names
    assert counts["sums"].count("sum") == 1 and "amax" not in counts["sums"]
    assert len(counts["sums"]) <= len(counts["moments"]) - 8, counts


def test_pruned_conv_without_thresholds_is_the_dense_conv_and_nothing_else():
    """All thresholds 0 (a layer the controller leaves alone for this clip): one conv call,
    no profile, no output copy."""
    conv = nn.Conv3d(4, 6, 3, 1, 1, bias=True)
    plan = PrunedConv(conv, nonneg=True)
    x = torch.rand(1, 4, 5, 9, 9)
    with _OpCounter() as ops:
        out, decision = plan(x, (0.0, 0.0, 0.0))
    assert len(ops.names) == 1 and "convolution" in ops.names[0], ops.names
    assert decision == (None, None, None)
    torch.testing.assert_close(out, conv(x), atol=1e-5, rtol=1e-4)


def test_a_kept_channel_set_seen_recently_reuses_its_sliced_weight(monkeypatch):
    """The weight sliced to a kept channel set is kept (LRU, `SLICED_WEIGHTS` sets): a
    clip with a recent set skips the weight's gather; every output still equals the masked
    reference, for more sets than the cache holds, on both execution paths."""
    gen = torch.Generator().manual_seed(5)
    for mode in ("compact", "taps"):
        conv = nn.Conv3d(12, 5, 3, 1, 1, bias=True)
        plan = PrunedConv(conv, frame_exec=mode)
        x = torch.rand(1, 12, 4, 6, 6, generator=gen)
        sets = [torch.randperm(12, generator=gen)[:k].sort().values
                for k in range(2, 2 + execute.SLICED_WEIGHTS + 3)]
        frames = [0, 1, 3]
        for _ in range(2):
            for ch in sets:
                out, _ = plan(x, decision=(frames, ch, None))
                cm = torch.zeros(12)
                cm[ch] = 1
                fm = torch.tensor([1.0, 1.0, 0.0, 1.0])
                torch.testing.assert_close(out, conv(x * cm.view(1, 12, 1, 1, 1)
                                                     * fm.view(1, 1, 4, 1, 1)),
                                           atol=1e-5, rtol=1e-4)
            assert len(plan._sliced_cache) == execute.SLICED_WEIGHTS
        with _OpCounter() as ops:          # again: now a hit, one weight gather fewer
            plan(x, decision=(frames, sets[-1], None))
        with _OpCounter() as miss:
            plan(x, decision=(frames, sets[0], None))
        assert miss.names.count("index_select") > ops.names.count("index_select")
    # a byte budget too: slices that would exceed it are not kept (paper-size weights)
    plan = PrunedConv(nn.Conv3d(12, 5, 3, 1, 1))
    one = plan.weight.index_select(1, sets[0]).numel() * 4
    monkeypatch.setattr(execute, "SLICED_BYTES", 2 * one + 1)
    for ch in sets[:4]:
        plan(x, decision=(None, ch, None))
    kept = sum(w.numel() * 4 for w in plan._sliced_cache.values())
    assert kept == plan._sliced_bytes <= execute.SLICED_BYTES
    assert 0 < len(plan._sliced_cache) < 4


def test_window_outputs_never_share_memory_with_each_other_or_the_cached_fill():
    """The bias-filled output a window is copied into is cached per shape and cloned per
    call: writing into one call's output (an in-place ReLU downstream) must change neither
    the next call's output nor what lies outside its window."""
    gen = torch.Generator().manual_seed(4)
    conv = nn.Conv3d(4, 5, 3, 1, 1, bias=True)
    nn.init.uniform_(conv.bias, -1.0, -0.5)          # negative: a ReLU would change it
    plan = PrunedConv(conv)
    x = torch.rand(1, 4, 4, 12, 12, generator=gen)
    fe = _blob(12, 12, 3, 6, 4, 7, gen)
    first, _ = plan(x, decision=(None, None, fe))
    first.relu_()
    second, _ = plan(x, decision=(None, None, fe))
    torch.testing.assert_close(second, conv(x * fe), atol=1e-5, rtol=1e-4)
    assert first.data_ptr() != second.data_ptr()


def test_batched_effective_macs_equal_the_measurement_layer():
    gen = torch.Generator().manual_seed(0)
    convs = [(nn.Conv3d(6, 4, 3, 1, 1), (6, 5, 7, 7)), (nn.Conv3d(6, 8, 3, 2, 1), (6, 4, 8, 8)),
             (nn.Conv3d(6, 4, (1, 3, 3), 1, (0, 1, 1)), (6, 1, 4, 4)),
             (nn.Conv3d(6, 4, 3, 1, 1), (6, 1, 4, 4))]
    for conv, shape in convs:
        c, t, h, w = shape
        fr = torch.rand(5, t, generator=gen) < 0.6
        ch = torch.rand(5, c, generator=gen) < 0.5
        fe = torch.rand(5, h, w, generator=gen) < 0.7
        got = batch_effective_macs(conv, shape, fr, ch, fe)
        want = [effective_conv_macs(conv, shape, fr[i], ch[i], fe[i]) for i in range(5)]
        assert got.tolist() == want


def test_soft_gates_approach_hard_masks_as_temperature_falls():
    gen = torch.Generator().manual_seed(0)
    a = torch.relu(torch.randn(4, 8, 6, 5, 5, generator=gen))
    tau = torch.rand(4, 3, generator=gen) * 1.5
    hard = apply_masks(a, *hard_masks(a, tau))
    errs = [float((soft_gates(a, tau, temp)[0] - hard).abs().max()) for temp in (0.3, 0.03, 1e-4)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3


def test_network_soft_mode_at_low_temperature_matches_masked_and_counts_macs():
    torch.manual_seed(0)
    model = _big_logits(build_model("r3d18", 5, width=0.125, frames=8, size=32)).eval()
    net = AAPNet(model, None, temperature=1e-5)
    net.state.fixed_tau = torch.rand(len(net.names), 3) * 1.2
    x = torch.randn(3, 3, 8, 32, 32)
    with torch.no_grad():
        net.state.record = True
        hard = net(x)
        records = dict(net.state.records)
        soft = net(x, mode="soft")
    torch.testing.assert_close(soft, hard, atol=1e-3, rtol=1e-3)
    # expected MACs of the soft pass ≈ product-of-fractions MACs of the hard masks
    approx = net.macs["fixed_macs"] + sum(
        m * (fr.float().mean(1) * ch.float().mean(1) * fe.flatten(1).float().mean(1))
        for m, (fr, ch, fe) in zip(net.macs["layer_macs"], records.values(), strict=True))
    torch.testing.assert_close(net.expected_macs_ratio().double(),
                               (approx / net.macs["total"]).double(), atol=1e-3, rtol=1e-3)


# --- inference rewrites shared by every timed variant --------------------------------------


def test_fold_and_trim_are_exact_and_trimmed_convs_refuse_other_shapes():
    torch.manual_seed(0)
    for name in ("c3d", "r3d18"):
        model = _big_logits(build_model(name, 5, width=0.125, frames=8, size=32)).eval()
        x = torch.randn(2, 3, 8, 32, 32)
        with torch.no_grad():
            ref = model(x)
            folded = fold_batchnorm(copy.deepcopy(model))
            assert not any(isinstance(m, nn.BatchNorm3d) for m in folded.modules())
            torch.testing.assert_close(folded(x), ref, atol=1e-4, rtol=1e-4)
            trimmed = trim_padding_taps(folded)
            assert any(m.kernel_size == (1, 3, 3) for m in trimmed.modules()
                       if isinstance(m, nn.Conv3d))
            torch.testing.assert_close(trimmed(x), ref, atol=1e-4, rtol=1e-4)
            with pytest.raises(ValueError, match="trimmed"):
                trimmed(torch.randn(1, 3, 16, 32, 32))


def test_c3d_inference_pool_equals_max_pool3d():
    from dance.models.c3d import ClippedMaxPool3d

    for k, shape in [((1, 2, 2), (1, 4, 8, 16, 16)), ((2, 2, 2), (2, 3, 4, 8, 8)),
                     ((2, 2, 2), (1, 3, 1, 4, 4)), ((2, 2, 2), (1, 2, 3, 5, 4))]:
        x = torch.randn(shape)
        pool = ClippedMaxPool3d(k)
        with torch.no_grad():
            fast = pool(x)
        kk = tuple(min(a, b) for a, b in zip(k, shape[2:], strict=True))
        assert torch.equal(fast, F.max_pool3d(x, kk, kk))


# --- training and evaluation end to end (tiny) ---------------------------------------------


@pytest.fixture(scope="module")
def tiny_baseline(tiny_baselines, tmp_path_factory):
    """The session's tiny C3D baseline under this module's AAP settings."""
    root = tmp_path_factory.mktemp("aap")
    return copy_trained(tiny_baselines, root, models=["c3d"],
                      aap={"epochs": 3, "lr": 0.5, "train_clips": 0, "budget": "weight",
                           "points": [0.01, 8.0], "temperature": 0.2, "temperature_end": 0.1,
                           "ablations": [], "channel_multiple": 1, "min_layer_share": 0.0},
                      bench={"clips": 2, "repeats": 1, "warmup": 0, "energy_window_s": 0.05})


@pytest.fixture(scope="module")
def trained_point(tiny_baseline):
    """The tiny baseline with one trained and evaluated controller (no_ava@1), shared by the
    tests that read it: trained once per module, whatever order the tests run in."""
    from dance.aap.evaluate import evaluate_aap
    from dance.train.aap import train_aap

    train_aap(tiny_baseline, "c3d", "no_ava", 1)
    evaluate_aap(tiny_baseline, "c3d", "no_ava", 1)
    return tiny_baseline


def test_training_lowers_macs_as_the_budget_weight_rises(tiny_baseline):
    from dance.aap.evaluate import evaluate_aap
    from dance.train.aap import train_aap

    cfg = tiny_baseline
    ratios = []
    for point in (0, 1):
        train_aap(cfg, "c3d", "no_ava", point)
        ev = json.loads(evaluate_aap(cfg, "c3d", "no_ava", point).read_text())
        ratios.append(ev["macs"]["ratio_mean"])
    assert ratios[1] < ratios[0] - 0.05, ratios


def test_target_budget_pulls_the_mac_ratio_back_up_from_below():
    """budget=target is two-sided: below the budget its gradient raises the MAC ratio (the
    hinge, `ceiling`, left a controller that overshot at 0.6 of the MACs for budget 0.8)."""
    from dance.errors import ConfigError
    from dance.train.aap import budget_term

    for ratio0, sign in ((0.6, -1.0), (0.9, 1.0)):
        ratio = torch.tensor(ratio0, requires_grad=True)
        budget_term("target", ratio, 0.8, 20.0).backward()
        assert float(ratio.grad) == pytest.approx(sign * 20.0)
    below = torch.tensor(0.6, requires_grad=True)
    term = budget_term("ceiling", below, 0.8, 20.0)
    assert float(term) == 0.0
    assert float(budget_term("weight", torch.tensor(0.5), 2.0, 20.0)) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="aap.budget"):
        budget_term("hinge", below, 0.8, 20.0)


def test_quadratic_budget_pulls_harder_for_a_tighter_budget_that_target_does_not():
    """Where a sweep's budgets all lie below the ratio the controllers reach (latency budgets
    here), target's pull is the same for every budget, so every point ends at one network;
    quadratic pulls a tighter budget harder, and is two-sided like target."""
    from dance.train.aap import budget_term

    def pull(kind, budget, ratio0=0.93):
        ratio = torch.tensor(ratio0, requires_grad=True)
        budget_term(kind, ratio, budget, 20.0).backward()
        return float(ratio.grad)

    assert pull("target", 0.9) == pull("target", 0.5)
    assert 0 < pull("quadratic", 0.9) < pull("quadratic", 0.8) < pull("quadratic", 0.5)
    assert pull("quadratic", 0.5) == pytest.approx(2 * 20.0 * 0.43)
    assert pull("quadratic", 0.95) < 0                      # below the budget: pulled back up


def test_evaluation_writes_decisions_and_the_summary(trained_point):
    from dance.aap.summary import write_summary
    from dance.paths import Paths

    cfg = trained_point
    paths = Paths(cfg)
    ev = json.loads(paths.aap_eval("c3d", "no_ava", 1).read_text())
    for key in ("top1", "top1_delta", "macs", "memory", "energy", "overhead",
                "difficulty_correlation", "pruned_check", "per_layer"):
        assert key in ev
    assert set(ev["energy"]) == set(cfg["energy"]["presets"])
    assert ev["pruned_check"]["max_abs_logit_diff"] < 1e-3
    with open(paths.aap_decisions("c3d", "no_ava", 1)) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10 * 7                     # test clips × prunable layers of C3D
    per_clip: dict[str, int] = {}
    for r in rows:
        per_clip[r["clip"]] = per_clip.get(r["clip"], 0) + int(r["macs"])
    ratios = sorted((ev["macs"]["dense_fixed"] + v) / ev["macs"]["dense"]
                    for v in per_clip.values())
    assert np.isclose(np.mean(ratios), ev["macs"]["ratio_mean"])
    npz = np.load(paths.aap_masks("c3d", "no_ava", 1))
    assert npz["conv2:frames"].shape == (8, 8) and npz["conv2:features"].shape == (8, 16, 16)
    out = write_summary({**cfg, "aap": {**cfg["aap"], "ablations": ["no_ava"],
                                        "ablation_points": [1]}})
    with open(out) as fh:
        summary = list(csv.DictReader(fh))
    assert summary and {"model", "variant", "operating_point", "top1", "top1_delta", "macs_ratio",
                        "memory_ratio", "speedup_measured", "speedup_ideal"} <= set(summary[0])
    # Per nuisance term: the Spearman of the per-clip MAC ratios (rebuilt from the decisions
    # CSV) with that term of the test clips' metadata.
    from scipy import stats

    from dance.data.dataset import ClipDataset
    from dance.data.synthetic import WEIGHTS

    test = ClipDataset(paths.data_dir, "test")
    clips = sorted(per_clip, key=int)
    clip_ratios = [(ev["macs"]["dense_fixed"] + per_clip[c]) / ev["macs"]["dense"]
                   for c in clips]
    assert set(ev["difficulty_terms"]) == set(WEIGHTS)
    for term, corr in ev["difficulty_terms"].items():
        values = test.difficulty_terms[term].numpy()[[int(c) for c in clips]]
        if np.ptp(values) == 0 or np.ptp(clip_ratios) == 0:
            assert corr["spearman"] is None
        else:
            assert corr["spearman"] == pytest.approx(
                stats.spearmanr(clip_ratios, values).statistic, abs=1e-9)
    with open(paths.dance_difficulty_terms) as fh:
        terms = list(csv.DictReader(fh))
    assert [(r["variant"], r["operating_point"]) for r in terms] == \
        [(r["variant"], r["operating_point"]) for r in summary]
    term_columns = [c for c in terms[0] if c.startswith("spearman_") and "(" in c]
    assert term_columns[0] == "spearman_slow (0.35)" and len(term_columns) == len(WEIGHTS)
    assert paths.dance_difficulty_terms.with_suffix(".md").read_text().count("\n") == \
        2 + len(terms)


def test_val_check_scores_the_whole_val_split_and_writes_nothing(trained_point):
    """The recipe check (`aap-val`) reads the val split, never the test split's files."""
    from dance.aap.evaluate import validate_aap
    from dance.data.dataset import open_split
    from dance.paths import Paths

    cfg = trained_point
    paths = Paths(cfg)
    before = {p: p.stat().st_mtime_ns for p in paths.results.rglob("*") if p.is_file()}
    r = validate_aap(cfg, "c3d", "no_ava", 1)
    after = {p: p.stat().st_mtime_ns for p in paths.results.rglob("*") if p.is_file()}
    assert after == before
    assert r["split"] == "val" and r["clips"] == len(open_split(cfg, "val"))
    assert r["top1_delta"] == pytest.approx(r["top1"] - r["top1_dense"])
    assert 0.0 < r["macs_ratio"] <= 1.0


def test_summary_bounds_the_speedup_by_the_time_no_pruning_removes(trained_point):
    """With a bench where the unprunable rest (dense-floor) takes half the dense time, no
    point can be credited more than 2× (speedup_floor), the Amdahl speed-up lies between 1
    and that bound and below the MAC-ideal one, and the CLI table shows it."""
    from dance.aap.summary import bench_table, summary_rows
    from dance.io import write_csv
    from dance.paths import Paths
    from dance.plan import aap_pairs

    cfg = {**trained_point, "aap": {**trained_point["aap"], "ablations": ["no_ava"],
                                    "ablation_points": [1]}}
    paths = Paths(cfg)
    bench = [{"variant": "dense", "median_ms": 10.0, "speedup_vs_dense": 1.0,
              "speedup_status": "reference", "threads": 1},
             {"variant": "dense-floor", "median_ms": 5.0, "speedup_vs_dense": 2.0,
              "speedup_status": "ok", "threads": 1},
             {"variant": "dance-no_ava@1", "median_ms": 8.0, "speedup_vs_dense": 1.25,
              "speedup_status": "ok", "threads": 1},
             {"variant": "dance@0", "median_ms": 11.0, "speedup_vs_dense": 0.91,
              "speedup_status": "ok", "threads": 1}]           # benched, never evaluated
    write_csv(paths.aap_bench("c3d"), bench)
    try:
        row = next(r for r in summary_rows(paths, ["c3d"], aap_pairs(cfg), cfg["energy"],
                                           cfg["bench"]["clips"])
                   if (r["variant"], r["operating_point"]) == ("no_ava", 1))
        assert row["speedup_floor"] == pytest.approx(2.0)
        assert row["macs_ratio_bench_clips"] < 1.0
        assert 1.0 < row["speedup_amdahl"] < 2.0
        assert row["speedup_amdahl"] < row["speedup_ideal"]
        assert row["realised_over_amdahl"] == pytest.approx(1.25 / row["speedup_amdahl"])
        table = bench_table(cfg, "c3d", bench)
        assert "Amdahl" in table and f"{row['speedup_amdahl']:.2f}×" in table
        unevaluated = next(line for line in table.splitlines() if line.startswith("dance@0"))
        assert "0.91×" in unevaluated and "(not evaluated)" in unevaluated
    finally:
        paths.aap_bench("c3d").unlink()


def test_decision_overhead_splits_the_controller_from_the_per_conv_decisions():
    """From the point's two bench probes: tau0 − dense is the controller and the glue,
    (decide − tau0) / pruned convs what one conv's decisions cost; absent probes → None."""
    from dance.aap.summary import decision_overhead
    from dance.commands.aap import _aap_variant_names

    bench = {"dense": {"median_ms": "10.0", "speedup_vs_dense": "1.0"},
             "dance@2:tau0": {"median_ms": "10.2", "speedup_vs_dense": str(10 / 10.2)},
             "dance@2:decide": {"median_ms": "10.8", "speedup_vs_dense": str(10 / 10.8)}}
    layers = [{"pruned": True}, {"pruned": False}, {"pruned": True}, {"pruned": True}]
    got = decision_overhead(bench, "dance@2", layers)
    assert got["pruned_convs"] == 3
    assert got["controller_overhead_ms"] == pytest.approx(0.2)
    assert got["decision_overhead_us_per_conv"] == pytest.approx(200.0)
    assert got["speedup_tau0"] == pytest.approx(10 / 10.2)
    none = decision_overhead({"dense": bench["dense"]}, "dance@2", layers)
    assert none["controller_overhead_ms"] is None and none["decision_overhead_us_per_conv"] is None
    cfg = {"aap": {"points": [0.8, 0.5], "ablations": ["frames"], "ablation_points": [1]}}
    names = _aap_variant_names(cfg)
    assert {"dance@0:tau0", "dance@1:decide", "dance-frames@1"} <= set(names)
    assert not any(n.startswith("dance-frames@1:") for n in names)


def test_amdahl_speedup_is_one_when_nothing_is_pruned_and_the_floor_bound_at_zero():
    from dance.aap.summary import amdahl_speedup

    assert amdahl_speedup(10.0, 4.0, 1.0) == pytest.approx(1.0)
    assert amdahl_speedup(10.0, 4.0, 0.0) == pytest.approx(2.5)
    assert amdahl_speedup(10.0, 4.0, 0.5) == pytest.approx(10.0 / 7.0)


def test_bench_variant_is_the_prepared_pruned_network(trained_point):
    from dance.aap.bench import parse_name
    from dance.data.dataset import ClipDataset
    from dance.errors import ConfigError
    from dance.measure.variants import build_variant
    from dance.models.trained import load_trained
    from dance.paths import Paths
    from dance.train.aap import load_controller

    cfg = trained_point
    paths = Paths(cfg)
    assert parse_name("dance@3") == ("dance", 3, None)
    assert parse_name("dance-frames@0") == ("frames", 0, None)
    assert parse_name("dance@2:tau0") == ("dance", 2, "tau0")
    for bad in ("dance-bogus@1", "dance@1:bogus", "dance@1:"):
        with pytest.raises(ConfigError):
            parse_name(bad)
    model = load_trained(cfg, "c3d", "baseline", 10)
    fn = build_variant("dance-no_ava@1", cfg, "c3d", "baseline", copy.deepcopy(model))
    assert fn.net.eval_mode == "pruned"
    assert not any(isinstance(m, nn.BatchNorm3d) for m in fn.net.backbone.modules())
    ref = load_controller(cfg, "c3d", "no_ava", 1, 10)         # masked, not rewritten
    test = ClipDataset(paths.data_dir, "test")
    with torch.inference_mode():
        for i in range(3):
            x = test[i][0][None]
            a, b = ref(x), fn(x)
            assert float((a - b).abs().max()) <= 1e-4 * max(1.0, float(a.abs().max()))


def test_overhead_probes_run_the_point_without_dropping_anything(trained_point):
    """`:tau0` and `:decide` run the trained point's network, controller included, with its
    thresholds forced to 0 / to a tiny positive value: both give the dense network's logits
    (nothing dropped on random clips), and `:decide` really runs every active decision."""
    from dance.aap import execute
    from dance.commands.registry import bench_families
    from dance.measure.variants import build_variant
    from dance.models.trained import load_trained

    cfg = trained_point
    bench_families()              # the CLI's registration: the test passes run alone too
    model = load_trained(cfg, "c3d", "baseline", 10)
    dense = build_variant("dense", cfg, "c3d", "baseline", copy.deepcopy(model))
    calls = {}
    real_keep = execute._keep

    def counting_keep(s, tau):
        calls[len(s)] = calls.get(len(s), 0) + 1
        return real_keep(s, tau)

    x = torch.rand(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1)) + 0.1
    for probe in ("tau0", "decide"):
        fn = build_variant(f"dance-no_ava@1:{probe}", cfg, "c3d", "baseline",
                           copy.deepcopy(model))
        assert any(any(a) for a in fn.net.state.active)      # the point prunes somewhere
        calls.clear()
        execute._keep = counting_keep
        try:
            with torch.inference_mode():
                a, b = dense(x), fn(x)
        finally:
            execute._keep = real_keep
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
        assert (sum(calls.values()) > 0) == (probe == "decide"), (probe, calls)


def test_controller_leaves_small_layers_and_short_inputs_alone(tmp_path):
    from dance.aap.model import network_macs
    from dance.train.aap import controller_spec

    cfg = tiny_config(tmp_path, model={"width": 0.25}, dataset={"frames": 8, "size": 64})
    model = build_model("r3d18", 10, width=0.25, frames=8, size=64)
    macs = network_macs(model, model.clip_shape)
    for variant, dims in (("dance", (1, 1, 1)), ("frames", (1, 0, 0)), ("features", (0, 0, 1))):
        spec = controller_spec(cfg["aap"], model, variant, macs)
        mask = Controller(**spec).mask.bool().tolist()
        for shape, layer_macs, row in zip(macs["in_shapes"], macs["layer_macs"], mask,
                                          strict=True):
            big = layer_macs / macs["total"] >= cfg["aap"]["min_layer_share"]
            assert row == [big and dims[0] and shape[1] >= cfg["aap"]["min_frames"],
                           big and bool(dims[1]), big and bool(dims[2])]
    assert any(row[0] for row in mask) is False        # features-only: no frame pruning


class _Clips:
    """The batches() protocol of ClipDataset over fixed tensors."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def batches(self, batch_size, order=None):
        for i in range(0, len(self.x), batch_size):
            idx = torch.arange(i, min(i + batch_size, len(self.x)))
            yield self.x[idx], torch.zeros(len(idx), dtype=torch.long), idx


def test_decisions_that_prune_almost_nothing_are_switched_off_and_stay_off(tiny_baseline):
    """A controller that prunes only conv2's features keeps that decision and loses every
    other one (they keep everything); the mask is saved, so a reloaded controller and the
    pruned path skip them too. min_pruned_share 0 changes nothing."""
    from dance import checkpoint
    from dance.train.aap import load_controller, switch_off_idle_decisions, train_aap

    torch.manual_seed(0)
    model = build_model("c3d", 5, width=0.125, frames=4, size=32).eval()
    layers = len(model.prunable_convs())
    ctrl = Controller(channels=8, frames=4, layers=layers, hidden=64, tau_max=2.0, tau_init=0.2)
    with torch.no_grad():
        ctrl.net[2].weight.zero_()
        bias = torch.full((layers, 3), -1e4)         # τ = 0: keep everything
        bias[0, 2] = 1e4                             # conv2 features: τ = τ_max
        ctrl.net[2].bias.copy_(bias.flatten())
    net = AAPNet(model, ctrl, input_shape=(3, 4, 32, 32))
    clips = _Clips(torch.randn(6, 3, 4, 32, 32))
    assert switch_off_idle_decisions(net, clips, 0.0, 4, torch.device("cpu")) == []
    assert bool(ctrl.mask.all())
    idle = switch_off_idle_decisions(net, clips, 0.02, 4, torch.device("cpu"))
    assert "conv2:features" not in idle and len(idle) == 3 * layers - 1
    assert net.state.active[0] == (False, False, True)
    assert all(not any(row) for row in net.state.active[1:])

    cfg = tiny_baseline
    out = train_aap(cfg, "c3d", "no_ava", 0)
    payload = checkpoint.load(out)
    loaded = load_controller(cfg, "c3d", "no_ava", 0, 10)
    names = [f"{n}:{d}" for n, row in zip(loaded.names, loaded.state.active, strict=True)
             for d, on in zip(("frames", "channels", "features"), row, strict=True) if not on]
    assert payload["switched_off"] and set(payload["switched_off"]) <= set(names)
