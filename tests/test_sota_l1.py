"""Static L1 filter pruning surgery (dance.sota.l1) on small random networks."""

from __future__ import annotations

import pytest
import torch

from dance.errors import ConfigError
from dance.models.registry import build_model
from dance.sota.l1 import kept_channels, l1_prune
from dance.sota.record import static_costs


def _net(name):
    torch.manual_seed(0)
    return build_model(name, num_classes=5, width=0.25, frames=4, size=16).eval()


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_ratio_zero_keeps_the_network(name):
    net = _net(name)
    pruned = l1_prune(net, 0.0)
    x = torch.randn(2, 3, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(pruned(x), net(x))
    assert kept_channels(pruned) == kept_channels(net)


def test_c3d_keeps_the_largest_l1_filters_and_shrinks():
    net = _net("c3d")
    pruned = l1_prune(net, 0.5, round_to=4)
    before, after = kept_channels(net), kept_channels(pruned)
    assert after["conv1"] == before["conv1"]                 # the stem is never pruned
    for name in ("conv2", "conv3a", "conv5b"):
        assert after[name] == before[name] // 2
    # conv2's kept filters are exactly its half with the largest L1 norms (conv1 is whole,
    # so conv2's input side is unchanged and whole filters can be compared)
    w = net.conv2.weight.detach()
    top = w.flatten(1).abs().sum(1).topk(after["conv2"]).indices.sort().values
    assert torch.equal(pruned.conv2.weight.detach(), w[top])
    assert pruned.fc6.in_features == net.fc6.in_features // 2   # follows conv5b via flatten
    assert pruned.fc8.out_features == 5
    x = torch.randn(1, 3, 4, 16, 16)
    assert pruned(x).shape == (1, 5)
    full, small = static_costs(net, net.clip_shape), static_costs(pruned, net.clip_shape)
    assert small["macs"] < 0.6 * full["macs"] and small["params"] < full["params"]
    assert net.conv2.out_channels == before["conv2"]            # the input is not changed


def test_r3d_residual_groups_stay_consistent():
    pruned = l1_prune(_net("r3d18"), 0.5, round_to=4)
    ch = kept_channels(pruned)
    # convs whose outputs are added share one channel set
    assert ch["layer2.0.conv2"] == ch["layer2.0.downsample.0"] == ch["layer2.1.conv2"] == 16
    assert ch["layer2.0.conv1"] == 16
    # layer1's residual stream contains the stem: left whole; its inner convs are pruned
    assert ch["layer1.0.conv2"] == ch["stem_conv"] == 16 and ch["layer1.0.conv1"] == 8
    assert pruned(torch.randn(1, 3, 4, 16, 16)).shape == (1, 5)


def test_bad_ratio():
    with pytest.raises(ConfigError, match="ratio"):
        l1_prune(_net("c3d"), 1.0)
