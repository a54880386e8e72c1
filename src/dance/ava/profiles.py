"""Magnitude profiles of an activation tensor and the sparsity measures AVA works with.

method.md §2 (our reconstruction): a layer's activation A (per sample C×T×H×W) is reduced to
three magnitude profiles — over frames, channels and spatial features — each normalised to
sum 1, i.e. a point on the probability simplex. On the simplex the variance of a profile and
its Hoyer sparsity are two monotone functions of the same ‖x‖₂ (Lemma 1, closed forms below),
so raising the variance during training is raising the sparsity AAP will exploit.

All functions are differentiable (AVA back-propagates through them) and batched: a profile
batch is a tensor [N, n] (N samples, n entries).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

DIMS = ("frame", "channel", "feature")


def to_simplex(m: Tensor) -> Tensor:
    """Rows of non-negative `m` [N, n] scaled to sum 1; an all-zero row becomes uniform.

    A dead layer (all-zero activation) has no preferred frame/channel/feature, so the
    uniform profile (variance 0, Hoyer 0) is its honest description. The denominator of an
    all-zero row is replaced by 1 before dividing so that no inf/NaN reaches the gradient.
    """
    total = m.sum(dim=1, keepdim=True)
    alive = total > 0
    share = m / torch.where(alive, total, torch.ones_like(total))
    return torch.where(alive, share, torch.full_like(m, 1.0 / m.shape[1]))


def magnitude_profiles(a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Frame [N,T], channel [N,C] and feature [N,H*W] profiles of `a` [N,C,T,H,W].

    Each is the mean of |a| over the other dimensions (method.md §2), normalised per sample
    to sum 1.
    """
    if a.ndim != 5:
        raise ValueError(f"expected an activation of shape [N,C,T,H,W], got {tuple(a.shape)}")
    mag = a.abs()
    fr = mag.mean(dim=(1, 3, 4))
    ch = mag.mean(dim=(2, 3, 4))
    fe = mag.mean(dim=(1, 2)).flatten(1)
    return to_simplex(fr), to_simplex(ch), to_simplex(fe)


def normalised_variance(p: Tensor) -> Tensor:
    """Population variance of each row of `p` [N,n] divided by its maximum on the simplex.

    The maximum, (n−1)/n², is reached by a one-hot profile; dividing by it maps every layer
    into [0, 1] whatever its size, so that layers of 4 and of 512 channels weigh alike in
    the AVA loss (our reconstruction). n = 1 has no spread: 0.
    """
    n = p.shape[1]
    if n <= 1:
        return p.new_zeros(p.shape[0])
    return p.var(dim=1, unbiased=False) / ((n - 1) / n**2)


def hoyer(p: Tensor) -> Tensor:
    """Hoyer sparsity (√n − ‖p‖₁/‖p‖₂)/(√n − 1) of each row of `p` [N,n], in [0, 1].

    0 for a constant row, 1 for a one-hot row. n = 1 and all-zero rows give 0.
    """
    n = p.shape[1]
    if n <= 1:
        return p.new_zeros(p.shape[0])
    l1 = p.abs().sum(dim=1)
    l2 = p.norm(dim=1)
    ratio = l1 / torch.where(l2 > 0, l2, torch.ones_like(l2))
    ratio = torch.where(l2 > 0, ratio, torch.full_like(ratio, math.sqrt(n)))
    return (math.sqrt(n) - ratio) / (math.sqrt(n) - 1)


def l2_from_variance(var: Tensor | float, n: int) -> Tensor | float:
    """Lemma 1: ‖x‖₂ = sqrt(n·σ² + 1/n) for x on the n-simplex with population variance σ²."""
    if isinstance(var, Tensor):
        return torch.sqrt(n * var + 1.0 / n)
    return math.sqrt(n * var + 1.0 / n)


def hoyer_from_l2(l2: Tensor | float, n: int) -> Tensor | float:
    """Lemma 1: H(x) = (√n − 1/‖x‖₂)/(√n − 1) on the n-simplex (‖x‖₁ = 1), for n ≥ 2."""
    if n < 2:
        raise ValueError("Hoyer sparsity needs at least 2 entries")
    return (math.sqrt(n) - 1.0 / l2) / (math.sqrt(n) - 1)
