"""Dense MACs (fvcore) against hand counts; exact effective MACs against brute force."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from dance.measure import macs
from dance.models import build_model

SHAPE = (1, 3, 8, 32, 32)


def test_c3d_conv1_matches_hand_count():
    model = build_model("c3d", num_classes=10, width=0.25)
    rows = {r["layer"]: r for r in macs.dense_profile(model, SHAPE)}
    # conv1: Cout 16 (64·0.25), Cin 3, 3×3×3 kernel, stride 1 pad 1 -> output 8×32×32.
    assert rows["conv1"]["macs"] == 16 * 3 * 3 * 3 * 3 * 8 * 32 * 32 == 10_616_832
    assert rows["conv1"]["out_shape"] == [1, 16, 8, 32, 32]
    assert rows["conv1"]["params"] == 16 * 3 * 27


def test_r3d_conv_matches_hand_count():
    model = build_model("r3d18", num_classes=10, width=0.25)
    rows = {r["layer"]: r for r in macs.dense_profile(model, SHAPE)}
    # stem: 3->16, (3,7,7), stride (1,2,2) -> 8×16×16; layer2.0.conv1: 16->32, 3×3×3,
    # stride 2 -> 4×8×8.
    assert rows["stem_conv"]["macs"] == 16 * 3 * 3 * 7 * 7 * 8 * 16 * 16
    assert rows["layer2.0.conv1"]["in_shape"] == [1, 16, 8, 16, 16]
    assert rows["layer2.0.conv1"]["macs"] == 32 * 16 * 3 * 3 * 3 * 4 * 8 * 8 == 3_538_944


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_total_is_conv_plus_linear_only(name):
    model = build_model(name, num_classes=10, width=0.25)
    model.train()
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm3d))
    before = bn.running_mean.clone()
    rows = macs.dense_profile(model, SHAPE)
    summary = macs.dense_summary(model, SHAPE)
    assert model.training and torch.equal(bn.running_mean, before)  # pure: no state change

    hand = 0
    for r in rows:
        module = dict(model.named_modules())[r["layer"]]
        if isinstance(module, nn.Conv3d):
            hand += (module.out_channels * module.in_channels // module.groups
                     * int(np.prod(module.kernel_size)) * int(np.prod(r["out_shape"][2:])))
        elif isinstance(module, nn.Linear):
            hand += module.in_features * module.out_features
        else:  # BatchNorm, ReLU, pooling, dropout are not MACs
            assert r["macs"] == 0, r
    assert summary["macs_total"] == hand == sum(r["macs"] for r in rows)
    assert summary["params_total"] == sum(p.numel() for p in model.parameters())
    assert summary["ignored_ops"]  # pools (and adds) are reported, not silently dropped
    assert all(op.startswith("aten::") and n > 0 for op, n in summary["ignored_ops"].items())
    assert not any(r["type"] == "Site" for r in rows)


# --- exact effective MACs ------------------------------------------------------------------

def _brute_force(conv: nn.Conv3d, x: torch.Tensor) -> int:
    """Multiply-adds whose input element is non-zero, by looping over outputs and taps."""
    c, t, h, w = x.shape
    out_shape = conv(x[None]).shape[2:]
    g = conv.groups
    nz = (x != 0).reshape(g, c // g, t, h, w).sum(1).numpy()  # non-zeros per group
    per_group_out = conv.out_channels // g
    pt, ph, pw = conv.padding
    st, sh, sw = conv.stride
    dt, dh, dw = conv.dilation
    kt, kh, kw = conv.kernel_size
    replicate = conv.padding_mode == "replicate"
    count = 0
    for to, ho, wo in itertools.product(*(range(n) for n in out_shape)):
        for a, b, d in itertools.product(range(kt), range(kh), range(kw)):
            ti, hi, wi = to * st - pt + a * dt, ho * sh - ph + b * dh, wo * sw - pw + d * dw
            if replicate:
                ti, hi, wi = min(max(ti, 0), t - 1), min(max(hi, 0), h - 1), min(max(wi, 0), w - 1)
            elif not (0 <= ti < t and 0 <= hi < h and 0 <= wi < w):
                continue  # reads zero padding
            count += int(nz[:, ti, hi, wi].sum()) * per_group_out
    return count


CASES = [
    # cin, cout, kernel, stride, padding, dilation, groups, (T, H, W)
    (4, 6, (3, 3, 3), 1, 1, 1, 1, (4, 7, 7)),
    (4, 6, (3, 3, 3), 2, 1, 1, 1, (5, 8, 8)),
    (4, 6, (3, 3, 3), 1, 0, 1, 1, (4, 6, 6)),
    (3, 5, (1, 3, 3), 1, (0, 1, 1), 1, 1, (3, 6, 6)),
    (3, 5, (1, 3, 3), 2, 0, 1, 1, (3, 7, 7)),
    (3, 4, (3, 7, 7), (1, 2, 2), (1, 3, 3), 1, 1, (4, 9, 9)),
    (3, 4, (3, 7, 7), 1, 0, 1, 1, (3, 8, 8)),
    (4, 6, (3, 3, 3), 1, 2, 2, 2, (4, 7, 7)),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_effective_macs_exact(case, seed):
    cin, cout, k, stride, pad, dil, groups, (t, h, w) = case
    gen = torch.Generator().manual_seed(seed)
    conv = nn.Conv3d(cin, cout, k, stride=stride, padding=pad, dilation=dil, groups=groups)
    frames = torch.rand(t, generator=gen) < 0.6
    channels = torch.rand(cin, generator=gen) < 0.6
    features = torch.rand(h, w, generator=gen) < 0.5
    frames[0] = channels[-1] = features[0, 0] = True  # keep a border element alive
    keep = channels[:, None, None, None] & frames[None, :, None, None] & features[None, None]
    x = (1.0 + torch.rand(cin, t, h, w, generator=gen)) * keep  # kept values are never 0
    with torch.no_grad():
        expected = _brute_force(conv, x)
    got = macs.effective_conv_macs(conv, (cin, t, h, w), frames, channels, features)
    assert got == expected
    # With a batch dimension (same masks per sample) the count scales with N.
    assert macs.effective_conv_macs(conv, (2, cin, t, h, w), frames, channels, features) == 2 * got


def test_effective_macs_replicate_padding():
    conv = nn.Conv3d(2, 3, 3, padding=1, padding_mode="replicate")
    gen = torch.Generator().manual_seed(3)
    frames, channels = torch.tensor([True, False, True]), torch.tensor([True, True])
    features = torch.rand(5, 5, generator=gen) < 0.5
    x = (1.0 + torch.rand(2, 3, 5, 5, generator=gen)) * (frames[:, None, None] & features)
    with torch.no_grad():
        expected = _brute_force(conv, x)
    assert macs.effective_conv_macs(conv, (2, 3, 5, 5), frames, channels, features) == expected


def test_effective_dense_and_approx():
    conv = nn.Conv3d(4, 8, 3, padding=1, bias=False)
    dense = 8 * 4 * 27 * 4 * 6 * 6  # no padding taps removed: dense counts them as MACs
    full = macs.effective_conv_macs(conv, (4, 4, 6, 6))
    assert macs.dense_conv_macs(conv, (8, 4, 6, 6)) == dense
    # Exact counting skips taps that read padding, so even "keep all" is below dense.
    interior = 8 * 4 * (4 * 3 - 2) * (6 * 3 - 2) ** 2  # Σ_t taps_t · (Σ_h taps_h)²
    assert full == interior < dense
    assert macs.approx_effective_macs(dense, 0.5, 0.25, 0.5) == dense * 0.0625
    frames = [True, True, False, False]
    exact = macs.effective_conv_macs(conv, (4, 4, 6, 6), frame_keep=frames)
    # Frames 0,1 kept: output t=0 reads {0,1}, t=1 {0,1}, t=2 {1}, t=3 none -> 5 tap-frames.
    assert exact == 8 * 4 * 5 * 16 ** 2
    with pytest.raises(ValueError, match="frame_keep"):
        macs.effective_conv_macs(conv, (4, 4, 6, 6), frame_keep=[True] * 3)
