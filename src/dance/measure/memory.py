"""Memory-access model of a conv layer (method.md §4), ideal-reuse counting.

Per conv layer and clip (formulas and a worked example in docs/measurement.md):

    weights_read    = Cout · kept_in_channels · kT·kH·kW / groups  (+ Cout if bias)
    inputs_read     = kept input elements (each read once; pruned ones are never stored)
    outputs_written = Cout · T_out · H_out · W_out (× N): the conv's output is dense
    bytes           = elements · bytes_per_element

"Ideal reuse" means every element crosses the memory interface exactly once, as if the
on-chip buffer held everything a layer needs; it is the lower bound a dataflow could reach
and the same assumption for dense and pruned runs, so ratios between them are meaningful.
BatchNorm is folded into the conv and ReLU/pooling are fused, so they add no traffic.
Linear layers are treated as 1×1×1 convs over a 1×1×1 volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from dance.nn.probe import example_input, probe_calls

FIELDS = ("weights_read", "inputs_read", "outputs_written")


def _prod(shape: Sequence[int]) -> int:
    return int(np.prod([int(s) for s in shape], dtype=np.int64))


def _with_bytes(counts: dict[str, int], bytes_per_element: int) -> dict[str, int]:
    out = dict(counts)
    out["total"] = sum(counts[k] for k in FIELDS)
    for key in (*FIELDS, "total"):
        out[f"{key}_bytes"] = out[key] * bytes_per_element
    out["bytes_per_element"] = bytes_per_element
    return out


def conv_accesses(conv: nn.Conv3d, in_shape: Sequence[int], out_shape: Sequence[int],
                  kept_in_channels: int, kept_in_elements: int, bytes_per_element: int = 4,
                  ) -> dict[str, int]:
    """Elements and bytes a conv reads and writes when only part of its input is kept.

    `in_shape`/`out_shape` are (C,T,H,W) or (N,C,T,H,W); `kept_in_elements` counts over the
    whole `in_shape` (all samples). Weights are read once per call, whatever N is.
    Returns {weights_read, inputs_read, outputs_written, total} and the same keys with a
    ``_bytes`` suffix, plus ``bytes_per_element``.
    """
    cin = int(in_shape[-4])
    if cin != conv.in_channels or int(out_shape[-4]) != conv.out_channels:
        raise ValueError(f"shapes {tuple(in_shape)} -> {tuple(out_shape)} do not fit {conv}")
    if not 0 <= kept_in_channels <= cin:
        raise ValueError(f"kept_in_channels={kept_in_channels} not in [0, {cin}]")
    if not 0 <= kept_in_elements <= _prod(in_shape):
        raise ValueError(f"kept_in_elements={kept_in_elements} exceeds the input size")
    taps = _prod(conv.kernel_size)
    weights = conv.out_channels * kept_in_channels * taps // conv.groups
    if conv.bias is not None:
        weights += conv.out_channels
    counts = {
        "weights_read": int(weights),
        "inputs_read": int(kept_in_elements),
        "outputs_written": _prod(out_shape),
    }
    return _with_bytes(counts, bytes_per_element)


def linear_accesses(linear: nn.Linear, in_shape: Sequence[int], out_shape: Sequence[int],
                    bytes_per_element: int = 4) -> dict[str, int]:
    """Dense linear layer: weights Cout·Cin (+ bias), inputs and outputs read/written once."""
    weights = linear.out_features * linear.in_features
    if linear.bias is not None:
        weights += linear.out_features
    counts = {"weights_read": int(weights), "inputs_read": _prod(in_shape),
              "outputs_written": _prod(out_shape)}
    return _with_bytes(counts, bytes_per_element)


def dense_profile(model: nn.Module, input_shape: Sequence[int] = (1, 3, 16, 112, 112),
                  bytes_per_element: int = 4) -> list[dict[str, Any]]:
    """Per conv/linear layer of the dense model: {layer, type, in_shape, out_shape, …accesses}.

    Runs one forward pass on a zero clip in eval mode under no_grad (mode restored).
    """
    x = example_input(model, input_shape, keep_batch=True)
    rows: list[dict[str, Any]] = []
    for call in probe_calls(model, x, lambda _, m: isinstance(m, (nn.Conv3d, nn.Linear))):
        module, ins, outs = call.module, list(call.input.shape), list(call.output.shape)
        if isinstance(module, nn.Conv3d):
            acc = conv_accesses(module, ins, outs, module.in_channels, _prod(ins),
                                bytes_per_element)
        else:
            acc = linear_accesses(module, ins, outs, bytes_per_element)
        rows.append({"layer": call.name, "type": type(module).__name__,
                     "in_shape": ins, "out_shape": outs, **acc})
    return rows


def dense_summary(model: nn.Module, input_shape: Sequence[int] = (1, 3, 16, 112, 112),
                  bytes_per_element: int = 4) -> dict[str, int]:
    """Sum of :func:`dense_profile` over layers (same keys as :func:`conv_accesses`)."""
    rows = dense_profile(model, input_shape, bytes_per_element)
    keys = (*FIELDS, "total", *(f"{k}_bytes" for k in (*FIELDS, "total")))
    out = {k: sum(r[k] for r in rows) for k in keys}
    out["bytes_per_element"] = bytes_per_element
    return out
