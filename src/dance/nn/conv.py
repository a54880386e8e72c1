"""One 3D convolution for every timed network, with a process-wide backend policy.

Why: on CPU, PyTorch picks a conv kernel per call from the input shape. For a batch of one
clip with small channel counts it picks ``Slow3d`` (an im2col + GEMM fallback) instead of
oneDNN (``Mkldnn``), which it uses from batch 2 on — e.g. 32→64 channels at 4×16×16 take
~8 ms at batch 1 but ~1 ms per clip at batch 2 on the development machine. A pruned
network slices its weights per clip, so its convs have other shapes than the dense
reference's and may land on the other kernel; a measured speed-up would then partly be a
kernel switch, not pruning. Routing every timed conv through :func:`conv3d` under one
policy makes dense and pruned runs use the same kernel family:

* ``native``  — ``F.conv3d`` (PyTorch chooses the kernel, Slow3d included);
* ``mkldnn``  — ``torch.mkldnn_convolution`` (oneDNN) for CPU float32 5-D inputs whenever
  this PyTorch build has oneDNN, even if ``torch.backends.mkldnn.enabled`` is off; anything
  else (CUDA, other dtypes, string padding) falls back to ``F.conv3d``;
* ``auto``    — as ``mkldnn`` when oneDNN is available *and* enabled, ``native`` elsewhere.

:func:`conv_backend_audit` reports which kernel every conv call of one forward pass used.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

BACKENDS = ("auto", "mkldnn", "native")
FORCED_LABEL = "mkldnn (forced)"

_policy = "auto"


def set_conv_backend(name: str) -> str:
    """Set the process-wide policy of :func:`conv3d`; returns the previous one."""
    global _policy
    if name not in BACKENDS:
        raise ValueError(f"conv backend {name!r} unknown; allowed: {', '.join(BACKENDS)}")
    previous, _policy = _policy, name
    return previous


def get_conv_backend() -> str:
    """The current policy name (``auto``, ``mkldnn`` or ``native``)."""
    return _policy


@contextlib.contextmanager
def conv_backend(name: str) -> Iterator[str]:
    """Use policy `name` inside the block, restoring the previous one afterwards."""
    previous = set_conv_backend(name)
    try:
        yield name
    finally:
        set_conv_backend(previous)


def mkldnn_available() -> bool:
    """True when this PyTorch build can run oneDNN convolutions on this CPU."""
    return bool(torch.backends.mkldnn.is_available())


def _triple(value: int | Sequence[int]) -> list[int]:
    if isinstance(value, int):
        return [value] * 3
    out = [int(v) for v in value]
    return out * 3 if len(out) == 1 else out


def _supported(x: Tensor, weight: Tensor, bias: Tensor | None, padding: Any) -> bool:
    """Inputs `torch.mkldnn_convolution` handles exactly like F.conv3d."""
    return (x.device.type == "cpu" and x.dim() == 5 and x.layout == torch.strided
            and x.dtype == torch.float32 and weight.dtype == torch.float32
            and (bias is None or bias.dtype == torch.float32)
            and not isinstance(padding, str))


def resolve_backend(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                    padding: Any = 0, policy: str | None = None) -> str:
    """``"mkldnn"`` if :func:`conv3d` would force oneDNN for these arguments, else ``"native"``."""
    policy = policy or _policy
    if policy == "native" or not _supported(x, weight, bias, padding):
        return "native"
    if policy == "auto" and not torch.backends.mkldnn.enabled:
        return "native"
    return "mkldnn" if mkldnn_available() else "native"


def conv3d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
           stride: int | Sequence[int] = 1, padding: int | Sequence[int] | str = 0,
           dilation: int | Sequence[int] = 1, groups: int = 1) -> Tensor:
    """``F.conv3d`` with the kernel chosen by the process-wide policy (module docstring).

    Same arguments and result as ``F.conv3d`` (to float32 rounding: oneDNN sums in another
    order). Every timed conv — dense reference, pruned variants with per-clip sliced
    weights, baselines — must call this function so they share one kernel family.
    """
    if resolve_backend(x, weight, bias, padding) == "mkldnn":
        return torch.mkldnn_convolution(x, weight, bias, _triple(padding), _triple(stride),
                                        _triple(dilation), int(groups))
    return F.conv3d(x, weight, bias, stride, padding, dilation, groups)


class FastConv3d(nn.Conv3d):
    """``nn.Conv3d`` whose forward goes through :func:`conv3d` (same parameters and state).

    Non-zero padding modes pad explicitly first, exactly as ``nn.Conv3d`` does, and then
    convolve without padding, so every padding mode gives ``nn.Conv3d``'s result.
    """

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv3d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv3d(input, weight, bias, self.stride, self.padding, self.dilation,
                      self.groups)


def use_fast_convs(model: nn.Module) -> nn.Module:
    """Turn every plain ``nn.Conv3d`` in `model` into a :class:`FastConv3d`, in place.

    The class of each module object is swapped, so parameters, buffers, hooks, the
    state_dict and every reference other code holds to the conv (e.g. the pairs of
    ``model.prunable_convs()``) stay the same objects. Subclasses of ``nn.Conv3d`` with
    their own forward are left alone. Returns `model`.
    """
    for module in model.modules():
        if type(module) is nn.Conv3d:
            module.__class__ = FastConv3d
    return model


def use_native_convs(model: nn.Module) -> nn.Module:
    """Undo :func:`use_fast_convs` (every ``FastConv3d`` becomes a plain ``nn.Conv3d``)."""
    for module in model.modules():
        if type(module) is FastConv3d:
            module.__class__ = nn.Conv3d
    return model


def _conv3d_args(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                 stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1,
                 ) -> tuple[Tensor, Tensor, Tensor | None, Any, Any, Any, int]:
    return input, weight, bias, stride, padding, dilation, groups


def _string_padding(padding: str, weight: Tensor, dilation: list[int]) -> list[int]:
    if padding == "valid":
        return [0, 0, 0]
    return [d * (k - 1) // 2 for d, k in zip(dilation, weight.shape[2:], strict=True)]


def pytorch_backend(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                    padding: Any = 0, dilation: Any = 1, groups: int = 1) -> str:
    """Name of the kernel ``F.conv3d`` would pick for these arguments (e.g. ``Slow3d``)."""
    dil = _triple(dilation)
    pad = _string_padding(padding, weight, dil) if isinstance(padding, str) else _triple(padding)
    backend = torch._C._select_conv_backend(x, weight, bias, _triple(stride), pad, dil, False,
                                            [0, 0, 0], int(groups), None)
    return str(backend).rsplit(".", 1)[-1]


class _AuditMode(TorchFunctionMode):
    """Records the kernel of every 3D conv call made while active."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.conv3d:
            self.counts[pytorch_backend(*_conv3d_args(*args, **kwargs))] += 1
        elif func is torch.mkldnn_convolution:
            self.counts[FORCED_LABEL] += 1
        return func(*args, **kwargs)


def conv_backend_audit(model: nn.Module | Callable[[Tensor], Any], x: Tensor) -> dict[str, int]:
    """Run ``model(x)`` once (no grad) and count the kernel of each 3D conv call.

    Keys are PyTorch's backend names for calls that go to ``F.conv3d`` (``Slow3d``,
    ``Mkldnn``, ``CudaDepthwise3d``, ...) and ``"mkldnn (forced)"`` for calls that
    :func:`conv3d` sent to oneDNN directly. Calls are intercepted at the function level
    (not by module hooks), so functional convs on per-clip sliced weights are counted too.
    """
    mode = _AuditMode()
    with torch.no_grad(), mode:
        model(x)
    return dict(sorted(mode.counts.items()))
