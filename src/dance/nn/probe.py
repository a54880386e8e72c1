"""One probe clip for every shape-discovery forward pass, on the network's own device.

Several steps learn shapes by running a network once on a dummy clip (MAC counts, BatchNorm
folding, the controller's input size, export). A dummy created with a bare ``torch.zeros``
lands on the CPU and breaks every one of them on a GPU (issue 22); this helper puts it where
the network's parameters are, with their dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def example_input(model: nn.Module, shape: Sequence[int], random: bool = False,
                  seed: int = 0) -> Tensor:
    """A batch-1 clip of `shape`'s last four sizes (C, T, H, W) on `model`'s device and in
    its dtype: zeros, or standard-normal values drawn on the CPU from `seed` (the same
    numbers whatever the device)."""
    size = (1, *(int(s) for s in shape[-4:]))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    if random:
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(size, generator=gen).to(device=device, dtype=dtype)
    return torch.zeros(size, device=device, dtype=dtype)
