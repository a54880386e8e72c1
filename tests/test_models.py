"""Backbones: shapes, width scaling, pruning sites, registry errors, memory format."""

import pytest
import torch
from torch import nn

from dance.errors import ConfigError
from dance.models import MODELS, Site, build_model

NAMES = sorted(MODELS)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 3, 8, 64, 64), (2, 3, 16, 112, 112)])
def test_output_shape(name, shape):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, width=0.25).eval()
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (shape[0], 7)
    assert torch.isfinite(out).all()
    assert model.classifier.in_features == model.feature_dim
    assert isinstance(model.first_conv, nn.Conv3d) and model.first_conv.in_channels == 3


@pytest.mark.parametrize("name", NAMES)
def test_short_and_small_clips_run(name):
    # Temporal pools clip their kernel, so T=1..4 must not crash (C3D pools T four times).
    model = build_model(name, num_classes=3, width=0.25).eval()
    with torch.no_grad():
        for t in (1, 2, 3, 4):
            assert model(torch.randn(1, 3, t, 16, 16)).shape == (1, 3)


@pytest.mark.parametrize("name", NAMES)
def test_width_scales_params_quadratically(name):
    small = _params(build_model(name, num_classes=10, width=0.25))
    large = _params(build_model(name, num_classes=10, width=0.5))
    assert 3.5 < large / small < 4.1


@pytest.mark.parametrize("name", NAMES)
def test_prunable_convs_cover_and_order(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5, width=0.25).eval()
    pairs = model.prunable_convs()
    expected = 7 if name == "c3d" else 16
    assert len(pairs) == expected
    # Every conv with a >1-tap kernel except the first is fed by a site; no site is unused.
    spatial_convs = [m for m in model.modules()
                     if isinstance(m, nn.Conv3d) and m.kernel_size != (1, 1, 1)]
    assert {id(c) for _, _, c in pairs} == {id(c) for c in spatial_convs} - {id(model.first_conv)}
    assert {id(s) for _, s, _ in pairs} == {id(m) for m in model.modules() if isinstance(m, Site)}
    for name_, site, conv in pairs:
        assert site.name == name_ and dict(model.named_modules())[name_] is conv

    events, site_out = [], {}

    def site_hook(module, args, output):
        events.append(("site", module.name))
        site_out[module.name] = output

    conv_name = {id(c): n for n, _, c in pairs}

    def conv_pre_hook(module, args):
        n = conv_name[id(module)]
        events.append(("conv", n))
        assert args[0] is site_out[n], f"{n} does not read its site's output"

    handles = [s.register_forward_hook(site_hook) for _, s, _ in pairs]
    handles += [c.register_forward_pre_hook(conv_pre_hook) for _, _, c in pairs]
    with torch.no_grad():
        model(torch.randn(1, 3, 8, 32, 32))
        first = list(events)
        events.clear()
        model(torch.randn(1, 3, 8, 32, 32))
    for h in handles:
        h.remove()
    names = [n for n, _, _ in pairs]
    # Each site fires exactly once per forward, in prunable_convs order, right before its conv.
    assert first == events
    assert [n for kind, n in first if kind == "site"] == names
    assert first == [e for n in names for e in (("site", n), ("conv", n))]


def test_residual_shortcut_bypasses_site():
    model = build_model("r3d18", num_classes=2, width=0.25).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        ref = model(x)
        # Zeroing every site's output kills each conv branch, but the stem signal survives
        # through the shortcuts; the output must change yet stay finite.
        handles = [s.register_forward_hook(lambda m, a, o: torch.zeros_like(o))
                   for _, s, _ in model.prunable_convs()]
        pruned = model(x)
    for h in handles:
        h.remove()
    assert not torch.allclose(ref, pruned)
    assert torch.isfinite(pruned).all()


def test_registry_errors():
    with pytest.raises(ConfigError, match="c3d.*r3d18"):
        build_model("resnet50", num_classes=10)
    with pytest.raises(ConfigError, match="width"):
        build_model("c3d", num_classes=10, width=0.0)
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("r3d18", num_classes=0)
    model = build_model("r3d18", num_classes=4, width=0.25, frames=8, size=64)
    assert model.clip_shape == (3, 8, 64, 64) and model.name == "r3d18"


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_3d_matches_contiguous(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=6, width=0.25).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        ref = model(x)
        out = model(x.to(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_init_and_zero_init_residual():
    from dance.models.r3d import R3D18

    model = R3D18(num_classes=3, width=0.25, zero_init_residual=True).requires_grad_(False)
    assert all(float(b.bn2.weight.abs().sum()) == 0.0 for b in model.blocks())
    assert all(float(b.bn1.weight.min()) == 1.0 for b in model.blocks())
    # Kaiming fan_out: std = sqrt(2 / (Cout · k)).
    conv = model.layer3[1].conv1
    expected = (2.0 / (conv.out_channels * 27)) ** 0.5
    assert abs(float(conv.weight.std()) - expected) / expected < 0.05
