"""Dense and effective multiply-accumulate counts (method.md §4).

Convention: one multiply-add = one MAC. Only convolutions and linear/matmul-like layers
count; BatchNorm (foldable into the preceding conv at inference), ReLU, pooling and the
residual additions are not MACs and count 0. fvcore counts conv/linear as MACs already; we
install only its conv/linear/matmul counters and mark its BatchNorm/norm/upsample/pool
counters as ignored, so that the policy above holds.

Formulas (docs/measurement.md):
  dense conv   = Cout · (Cin/groups) · kT·kH·kW · T_out·H_out·W_out          (per sample)
  effective    = Σ_outputs Σ_taps [tap reads a kept, non-padding input position]
                 · (#kept input channels) · Cout/groups                         (exact)
  approximate  = dense · frame_frac · channel_frac · feature_frac          (method.md)
  kept share   = effective(masks) / effective(all kept)       (like-for-like saving ratio)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dance.nn.probe import example_input, first_calls, probe_calls

# Ops fvcore would count that are not multiply-adds under our convention.
NOT_MACS = (
    "aten::batch_norm", "aten::group_norm", "aten::layer_norm", "aten::instance_norm",
    "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::adaptive_avg_pool2d",
    "aten::grid_sampler",
)


def _mac_handles() -> dict[str, Any]:
    """fvcore's multiply-add counters for conv, linear and matmul-like ops (and nothing else)."""
    from fvcore.nn import jit_handles as jh

    return {
        "aten::_convolution": jh.conv_flop_jit,
        "aten::linear": jh.linear_flop_jit,
        "aten::addmm": jh.addmm_flop_jit,
        "aten::bmm": jh.bmm_flop_jit,
        "aten::matmul": jh.matmul_flop_jit,
        "aten::mm": jh.matmul_flop_jit,
        "aten::einsum": jh.einsum_flop_jit,
    }


def _analysis(model: nn.Module, input_shape: Sequence[int]):
    """Run fvcore on a zero clip in eval mode (no BN statistics change) and restore mode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fvcore.nn import FlopCountAnalysis

    x = example_input(model, input_shape, keep_batch=True)
    leaves = {n: m for n, m in model.named_modules() if n and not any(m.children())}
    calls = first_calls(probe_calls(model, x, lambda n, _: n in leaves))  # shapes, order
    order = [c.name for c in calls]
    shapes = {c.name: (list(c.input.shape), list(c.output.shape)) for c in calls}
    fvcore_log = logging.getLogger("fvcore")
    old_level = fvcore_log.level
    was_training = model.training
    try:
        model.eval()
        fvcore_log.setLevel(logging.ERROR)
        fca = FlopCountAnalysis(model, (x,)).clear_op_handles()
        fca.set_op_handle(**_mac_handles(), **{op: None for op in NOT_MACS})
        fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        # fvcore traces with torch.jit, which newer torch flags as deprecated; the trace is
        # only read for op shapes, so the warning is noise here.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            by_module = fca.by_module()
            ignored = dict(sorted(fca.unsupported_ops().items()))
    finally:
        fvcore_log.setLevel(old_level)
        model.train(was_training)
    return by_module, ignored, leaves, order, shapes


def dense_profile(model: nn.Module, input_shape: Sequence[int] = (1, 3, 16, 112, 112),
                  ) -> list[dict[str, Any]]:
    """Per-layer rows {layer, type, macs, params, in_shape, out_shape}, execution order.

    One row per executed leaf module except Sites/Identity (they are not layers). `macs` is
    fvcore's count for the whole `input_shape` batch; `params` the module's own parameters.
    """
    by_module, _, leaves, order, shapes = _analysis(model, input_shape)
    rows = []
    for name in order:
        module = leaves[name]
        if isinstance(module, nn.Identity):
            continue
        rows.append({
            "layer": name,
            "type": type(module).__name__,
            "macs": int(by_module.get(name, 0)),
            "params": sum(p.numel() for p in module.parameters(recurse=False)),
            "in_shape": shapes[name][0],
            "out_shape": shapes[name][1],
        })
    return rows


def dense_summary(model: nn.Module, input_shape: Sequence[int] = (1, 3, 16, 112, 112),
                  ) -> dict[str, Any]:
    """{macs_total, params_total, ignored_ops, not_macs}.

    `ignored_ops` maps each op fvcore met but has no counter for (pools, adds, …) to its
    number of occurrences, so the caller can write out what was left uncounted;
    `not_macs` lists the ops zeroed on purpose by our convention.
    """
    by_module, ignored, _, _, _ = _analysis(model, input_shape)
    return {
        "macs_total": int(by_module[""]),
        "params_total": sum(p.numel() for p in model.parameters()),
        "ignored_ops": ignored,
        "not_macs": list(NOT_MACS),
    }


def dense_conv_macs(conv: nn.Conv3d, out_shape: Sequence[int]) -> int:
    """Cout·(Cin/groups)·kT·kH·kW · (product of out_shape's spatial dims, × batch if given)."""
    kt, kh, kw = conv.kernel_size
    per_position = conv.out_channels * (conv.in_channels // conv.groups) * kt * kh * kw
    spatial = out_shape[-3:]
    batch = int(np.prod(out_shape[:-4])) if len(out_shape) > 4 else 1
    return int(per_position * int(np.prod(spatial)) * batch)


def _as_bool(mask: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if mask is None:
        return torch.ones(shape, dtype=torch.bool)
    t = torch.as_tensor(np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask))
    if tuple(t.shape) != shape:
        raise ValueError(f"{what} has shape {tuple(t.shape)}, expected {shape}")
    return t.bool()


def effective_conv_macs(conv: nn.Conv3d, in_shape: Sequence[int], frame_keep: Any = None,
                        channel_keep: Any = None, feature_keep: Any = None) -> int:
    """Exact MACs of `conv` when its input is zero outside frame ∧ channel ∧ feature keeps.

    A multiply-add counts iff the input element it reads is inside the input (not padding)
    and kept. The kept set is separable: kept(c,t,h,w) = channel[c] ∧ frame[t] ∧ feature[h,w],
    so the count is  (Σ over output positions of #kept taps) · #kept channels · Cout/groups,
    where the first factor is a conv3d of the 0/1 (T,H,W) keep mask with an all-ones kernel
    using the conv's stride/padding/dilation (padding handled as the conv does: zeros ->
    never kept; reflect/replicate/circular -> reads the mask there).

    `in_shape` is (C,T,H,W) or (N,C,T,H,W); with N the same masks apply to every sample.
    A mask of None keeps everything in that dimension. Returns an int.
    """
    c, t, h, w = (int(s) for s in in_shape[-4:])
    batch = int(np.prod(in_shape[:-4])) if len(in_shape) > 4 else 1
    if c != conv.in_channels:
        raise ValueError(f"in_shape has {c} channels, conv expects {conv.in_channels}")
    frames = _as_bool(frame_keep, (t,), "frame_keep")
    channels = _as_bool(channel_keep, (c,), "channel_keep")
    features = _as_bool(feature_keep, (h, w), "feature_keep")

    mask = (frames[:, None, None] & features[None]).to(torch.float64)[None, None]
    pad = conv._reversed_padding_repeated_twice  # what conv.forward pads with, incl. "same"
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    if any(pad):
        mask = F.pad(mask, pad, mode=mode) if mode != "constant" else F.pad(mask, pad)
    ones = torch.ones((1, 1, *conv.kernel_size), dtype=torch.float64)
    with torch.no_grad():
        taps = F.conv3d(mask, ones, stride=conv.stride, dilation=conv.dilation)
    kept_taps = int(round(taps.sum().item()))
    kept_channels = int(channels.sum().item())
    return batch * kept_taps * kept_channels * conv.out_channels // conv.groups


def exact_layer_macs(module: nn.Module, in_shape: Sequence[int], other: int = 0) -> int:
    """Dense MACs of one layer under the artifact's one convention (docs/measurement.md §2):
    a Conv3d's taps that read padding are not MACs (:func:`effective_conv_macs`, all kept);
    a Linear is in × out per input row; any other layer gets `other` (e.g. fvcore's count)."""
    if isinstance(module, nn.Conv3d):
        return effective_conv_macs(module, in_shape)
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features * int(np.prod(in_shape[:-1]))
    return int(other)


def effective_conv_fraction(conv: nn.Conv3d, in_shape: Sequence[int], frame_keep: Any = None,
                            channel_keep: Any = None, feature_keep: Any = None) -> float:
    """Exact effective MACs ÷ exact MACs with everything kept (both skip padding taps).

    The like-for-like kept share of a conv's real work. Do not divide the exact count by
    fvcore's dense count instead: fvcore also counts taps that read padding (12% of a
    3×3×3 conv at 8×32×32, 77% at 1×4×4), which would show savings where nothing was pruned.
    """
    full = effective_conv_macs(conv, in_shape)
    kept = effective_conv_macs(conv, in_shape, frame_keep, channel_keep, feature_keep)
    return kept / full if full else 0.0


def approx_effective_macs(dense_macs: float, frame_frac: float, channel_frac: float,
                          feature_frac: float) -> float:
    """method.md's approximation: dense MACs × kept fractions (frames·channels·features).

    Exact only when kept positions are spread evenly over the taps; it ignores that border
    outputs read padding, so it differs from :func:`effective_conv_macs` at the borders and
    when the kept features cluster (see docs/measurement.md for one layer's numbers).
    """
    return float(dense_macs) * float(frame_frac) * float(channel_frac) * float(feature_frac)


def batch_effective_macs(conv: nn.Conv3d, in_shape: tuple[int, ...], frames: Tensor,
                         channels: Tensor, features: Tensor) -> Tensor:
    """Exact effective MACs [N] (int64) of `conv` for N clips' masks, the formula of
    :func:`effective_conv_macs` evaluated for a batch.

    `frames` [N,T], `channels` [N,C], `features` [N,H,W] are bool keep masks.
    """
    mask = (frames[:, :, None, None] & features[:, None]).to(torch.float64)[:, None]
    pad = conv._reversed_padding_repeated_twice
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    if any(pad):
        mask = F.pad(mask, pad) if mode == "constant" else F.pad(mask, pad, mode=mode)
    ones = torch.ones((1, 1, *conv.kernel_size), dtype=torch.float64)
    with torch.no_grad():
        taps = F.conv3d(mask, ones, stride=conv.stride, dilation=conv.dilation)
    kept_taps = taps.sum((1, 2, 3, 4)).round().to(torch.int64)
    return kept_taps * channels.sum(1).to(torch.int64) * conv.out_channels // conv.groups
