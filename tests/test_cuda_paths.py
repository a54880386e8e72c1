"""The GPU path on a machine without a GPU (issue 22.2).

A GPU refuses any op that mixes a GPU tensor with a CPU one (a 0-dim CPU scalar aside), so
a step whose index or probe tensor is created on the CPU crashes there. Here the ``meta``
device stands in for the GPU (shapes and devices propagate, nothing is computed) and
:class:`SameDevice` refuses a mixed op as a GPU would, for every op dispatched inside it.
Data-dependent code (``.tolist()``, ``float(t)``) cannot run on meta tensors; it is
exercised on the CPU by the other tests, and the decisions it makes are handed in fixed here.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from dance.aap.controller import Controller
from dance.aap.execute import PrunedConv
from dance.aap.model import AAPNet
from dance.aap.prune import apply_masks, hard_masks, round_up_channels, soft_gates
from dance.measure import latency
from dance.models import build_model
from dance.nn.probe import example_input

GPU = torch.device("meta")      # the stand-in (module docstring)


class SameDevice(TorchDispatchMode):
    """Raise on an op whose tensor arguments live on more than one device."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        devices = {t.device for t in tree_leaves((args, kwargs or {}))
                   if isinstance(t, torch.Tensor) and not (t.dim() == 0 and t.device.type == "cpu")}
        if len(devices) > 1:
            raise RuntimeError(f"{func} mixes devices {sorted(map(str, devices))}")
        return func(*args, **(kwargs or {}))


@pytest.fixture
def gpu():
    with SameDevice():
        yield GPU


def test_a_cpu_index_on_a_gpu_tensor_is_caught(gpu):
    # the premise of this file: what a GPU refuses is refused here
    x = torch.empty(4, 5, device=gpu)
    with pytest.raises(RuntimeError, match="mixes devices"):
        x.index_select(0, torch.tensor([0, 1]))
    assert x.index_select(0, torch.tensor([0, 1], device=gpu)).device == gpu


def test_probe_clips_follow_the_network():
    model = nn.Conv3d(3, 4, 3, device="meta", dtype=torch.float64)   # any non-CPU device
    x = example_input(model, (1, 3, 4, 8, 8))
    assert x.device.type == "meta" and x.dtype == torch.float64 and x.shape == (1, 3, 4, 8, 8)
    assert example_input(model, (3, 4, 8, 8), random=True).device.type == "meta"


def test_random_probe_is_the_same_clip_on_every_device():
    model = nn.Conv3d(3, 4, 3)
    a = example_input(model, (3, 2, 4, 4), random=True, seed=3)
    assert torch.equal(a, example_input(model.double(), (3, 2, 4, 4), random=True,
                                        seed=3).float())


def test_pruning_function_stays_on_the_gpu(gpu):
    a = torch.empty(2, 16, 4, 6, 6, device=GPU)
    tau = torch.empty(2, 3, device=GPU)
    fr, ch, fe = hard_masks(a, tau, channel_multiple=8)
    assert {fr.device, ch.device, fe.device} == {GPU}
    assert apply_masks(a, fr, ch, fe).device == GPU
    assert round_up_channels(torch.empty(2, 16, device=GPU), ch, 8).device == GPU
    out, gates = soft_gates(a, tau, 0.1)
    assert out.device == GPU and all(g.device == GPU for g in gates)


@pytest.mark.parametrize("frames", [None, [0, 1, 5], [2, 3]])
@pytest.mark.parametrize("frame_exec", ["taps", "compact"])
@pytest.mark.parametrize("stride", [1, 2])
def test_pruned_conv_runs_on_the_gpu_with_fixed_decisions(gpu, frames, frame_exec,
                                                          stride):
    conv = nn.Conv3d(8, 6, 3, stride=(stride, 1, 1), padding=1).to(gpu)
    plan = PrunedConv(conv, frame_exec=frame_exec)
    x = torch.empty(1, 8, 6, 5, 5, device=GPU)
    channels = torch.tensor([0, 2, 3, 7], device=GPU)
    for decision in [(frames, None, None), (frames, channels, None)]:
        out, kept = plan(x, decision=decision)
        assert out.device == GPU
        assert out.shape == conv(x).shape


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_backbone_and_aap_forward_on_the_gpu(name):
    # built on the CPU (the MAC probe reads values), then moved, as a GPU user's run does
    backbone = build_model(name, 5, width=0.125, frames=4, size=16).eval()
    layers = len(backbone.prunable_convs())
    first = backbone.first_conv.out_channels
    ctrl = Controller(channels=first, frames=4, layers=layers, hidden=8, tau_max=2.0,
                      tau_init=0.2)
    net = AAPNet(backbone, ctrl,
                 input_shape=(3, 4, 16, 16))
    net = net.to(GPU)
    with SameDevice():
        x = torch.empty(2, 3, 4, 16, 16, device=GPU)
        assert net(x, mode="off").device == GPU
        assert net(x, mode="masked").device == GPU
        net.train()
        assert net(x).device == GPU
        assert net.expected_macs_ratio().device == GPU


def test_timed_region_is_synchronised_on_the_gpu(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))

    class Clip:
        is_cuda = True
        device = GPU

    latency.synchronize(Clip())
    latency.synchronize(torch.zeros(1))            # the CPU has nothing to wait for
    assert calls == [GPU]
