"""Fold inference-mode BatchNorm into the conv that feeds it (for timed networks).

A BatchNorm3d in eval mode is an affine map per channel, y = (x − μ)·γ/√(σ²+ε) + β, so
``bn(conv(x))`` equals one conv with weight W·s and bias (b − μ)·s + β, s = γ/√(σ²+ε).
The bench folds every such pair in *every* timed variant (dense reference, DANCE,
baselines) so that none of them pays for a separate BatchNorm pass (docs/measurement.md,
"Host latency"). The result equals the unfolded network to float rounding.

Pairs are found by tracing one forward pass: a BatchNorm3d whose input tensor *is* the
output tensor of the Conv3d called just before it. The BatchNorm module is then replaced by
``nn.Identity`` in its parent, and the conv gets the folded weight and a bias. The model's
code is not changed; the model is changed in place and returned.
"""

from __future__ import annotations

import torch
from torch import nn

from dance.nn.probe import example_input, first_calls, probe_calls


def conv_bn_pairs(model: nn.Module, input_shape: tuple[int, ...] | None = None,
                  ) -> list[tuple[str, str]]:
    """(conv name, batchnorm name) for every BatchNorm3d applied directly to a conv output."""
    shape = tuple(input_shape or model.clip_shape)
    calls = [(c.module, c.input, c.output) for c in probe_calls(
        model, example_input(model, shape), lambda _, m: isinstance(m, (nn.Conv3d, nn.BatchNorm3d)))]
    names = {id(m): n for n, m in model.named_modules()}
    pairs = []
    for (conv, _, out), (bn, bn_in, _) in zip(calls, calls[1:], strict=False):
        if isinstance(conv, nn.Conv3d) and isinstance(bn, nn.BatchNorm3d) and bn_in is out:
            pairs.append((names[id(conv)], names[id(bn)]))
    return pairs


@torch.no_grad()
def fold_batchnorm(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> nn.Module:
    """Fold every conv→BatchNorm3d pair of `model` (in place; eval-mode semantics)."""
    for conv_name, bn_name in conv_bn_pairs(model, input_shape):
        conv = model.get_submodule(conv_name)
        bn = model.get_submodule(bn_name)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight = nn.Parameter((conv.weight * scale.view(-1, 1, 1, 1, 1)).contiguous(),
                                   requires_grad=False)
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias,
                                 requires_grad=False)
        parent, _, leaf = bn_name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, nn.Identity())
    return model


def dead_taps(conv: nn.Conv3d, in_shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """Per dimension (T, H, W): the range [k0, k1) of kernel taps that read at least one
    real (non-padding) input position for an input of spatial shape `in_shape[-3:]`.

    E.g. a 3×3×3 conv with padding 1 on a 1-frame input: taps 0 and 2 in time only ever
    read the zero padding, so the range in T is [1, 2).
    """
    out = []
    for size, k, s, p, d in zip(in_shape[-3:], conv.kernel_size, conv.stride, conv.padding,
                                conv.dilation, strict=True):
        n_out = (size + 2 * p - d * (k - 1) - 1) // s + 1
        live = [tap for tap in range(k)
                if any(0 <= o * s - p + tap * d < size for o in range(n_out))]
        out.append((min(live), max(live) + 1) if live else (0, k))
    return out


@torch.no_grad()
def trim_padding_taps(model: nn.Module, input_shape: tuple[int, ...] | None = None,
                      ) -> nn.Module:
    """Drop kernel taps that read only zero padding at this clip shape (in place).

    Exact for inputs of the traced shape: a tap whose every read falls in the zero padding
    contributes nothing. Only symmetric trims are applied (a conv takes one padding per
    dimension), e.g. the temporal taps of 3×3×3 convs on 1-frame inputs, which otherwise
    cost 3× the work of the middle tap. Counted MACs do not change: the exact count of
    :func:`dance.measure.macs.effective_conv_macs` never counts padding taps. The
    network then only accepts clips of the traced shape; each trimmed conv checks that.
    """
    shape = tuple(input_shape or model.clip_shape)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    ins = {id(c.module): tuple(c.input.shape[1:]) for c in first_calls(probe_calls(
        model, example_input(model, shape), lambda _, m: isinstance(m, nn.Conv3d)))}
    for conv in convs:
        if id(conv) not in ins or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            continue
        ranges = dead_taps(conv, ins[id(conv)])
        new_pad, slices, changed = [], [], False
        for (k0, k1), k, p in zip(ranges, conv.kernel_size, conv.padding, strict=True):
            if (k0, k1) != (0, k) and k0 == k - k1 and k0 <= p:
                new_pad.append(p - k0)
                slices.append(slice(k0, k1))
                changed = True
            else:
                new_pad.append(p)
                slices.append(slice(0, k))
        if not changed:
            continue
        weight = conv.weight[:, :, slices[0], slices[1], slices[2]].contiguous()
        conv.weight = nn.Parameter(weight, requires_grad=conv.weight.requires_grad)
        conv.kernel_size = tuple(weight.shape[2:])
        conv.padding = tuple(new_pad)
        conv._reversed_padding_repeated_twice = [q for q in reversed(new_pad) for _ in range(2)]
        conv.register_forward_pre_hook(_shape_guard(ins[id(conv)]))
    return model


def _shape_guard(expected: tuple[int, ...]):
    def check(module, args):
        if tuple(args[0].shape[1:]) != expected:
            raise ValueError(f"this conv was trimmed for inputs {expected} (trim_padding_taps); "
                             f"got {tuple(args[0].shape[1:])}")
    return check


def prepare_for_timing(model: nn.Module, input_shape: tuple[int, ...] | None = None,
                       ) -> nn.Module:
    """Inference-time rewrite shared by every timed variant: fold BatchNorm into convs
    and drop padding-only taps (both exact at the traced clip shape). In place."""
    fold_batchnorm(model, input_shape)
    return trim_padding_taps(model, input_shape)
