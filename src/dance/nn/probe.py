"""One probe clip and one probing pass for every shape-discovery forward pass, on the
network's own device.

Several steps learn shapes by running a network once on a dummy clip (MAC counts, BatchNorm
folding, the controller's input size, export). A dummy created with a bare ``torch.zeros``
lands on the CPU and breaks every one of them on a GPU (issue 22); this helper puts it where
the network's parameters are, with their dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


def example_input(model: nn.Module, shape: Sequence[int], random: bool = False,
                  seed: int = 0, keep_batch: bool = False) -> Tensor:
    """A batch-1 clip of `shape`'s last four sizes (C, T, H, W) on `model`'s device and in
    its dtype: zeros, or standard-normal values drawn on the CPU from `seed` (the same
    numbers whatever the device). With `keep_batch`, exactly `shape` (N, C, T, H, W)."""
    size = tuple(int(s) for s in shape) if keep_batch else (1, *(int(s) for s in shape[-4:]))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    if random:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(size, generator=gen).to(device=device, dtype=dtype)
    return torch.zeros(size, device=device, dtype=dtype)


@dataclass(frozen=True)
class Call:
    """One module call seen by :func:`probe_calls`: its name, the module, its first input and
    its output."""

    name: str
    module: nn.Module
    input: Tensor
    output: Tensor


def probe_calls(model: nn.Module, x: Tensor, select: Callable[[str, nn.Module], bool],
                run: Callable[[Tensor], object] | None = None) -> list[Call]:
    """Run `model` once on `x` (or ``run(x)``, a caller that drives it) in eval mode under
    ``no_grad`` and return every call of a module that ``select(name, module)`` accepts, in
    call order. The one shape-discovery pass of the package: hooks are removed and the
    model's train/eval mode restored whatever happens."""
    calls: list[Call] = []

    def hook(name: str):
        def record(module: nn.Module, args: tuple, output: Tensor) -> None:
            calls.append(Call(name, module, args[0], output))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if select(n, m)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            (run or model)(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return calls


def first_calls(calls: list[Call]) -> list[Call]:
    """The first call of each module, in call order (a module called twice, like a shared
    activation, is profiled at its first use)."""
    seen: set[int] = set()
    out = []
    for call in calls:
        if id(call.module) not in seen:
            seen.add(id(call.module))
            out.append(call)
    return out
