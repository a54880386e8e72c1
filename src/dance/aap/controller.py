"""The AAP controller (method.md §3, our reconstruction): statistics of the first conv's
post-activation output → a small MLP → one threshold triple (τ_FR, τ_CH, τ_FE) per prunable
layer and sample.

Input statistics of the first activation A1 (N, C1, T, H, W), per sample (``aap.stats``):

* ``moments`` (method.md's list): per-channel mean, standard deviation and maximum over
  (T, H, W) (3·C1 values) and the per-frame mean over (C1, H, W) (T values);
* ``sums``: the mean of every (channel, frame) map over (H, W) (C1·T values), one
  reduction. The channel and frame means of ``moments`` are linear in these, so the first
  layer forms them itself; the standard deviation and maximum are left out. Our choice for
  batch-1 latency: in the network each reduction and small op costs 3-5x what it costs
  alone (measured; caches left cold by the conv kernels are the likely cause), and the
  moments' nine extra op calls cost 0.13-0.19 ms per clip, 2-3% of the network
  (docs/experiments.md).

They are standardised with fixed statistics (mean and std of each input over the
controller's training clips, buffers `mu`/`sigma`, set by :meth:`Controller.calibrate`
before training and saved with the weights).

Network: Linear(d, hidden) → ReLU → Linear(hidden, 3·L) → sigmoid · τ_max. A
dimension switched off (ablations "frames only" etc.) or a layer left unpruned (too few
MACs to be worth its overhead, ``aap.min_layer_share``) has its thresholds forced to 0,
which keeps everything there (buffer `mask` [L, 3]; `mask` can also be given per layer and
dimension, e.g. no frame pruning in layers with fewer than ``aap.min_frames`` frames). The output bias starts so that every threshold is
`tau_init` (small: the controller starts near the dense network and the budget term pushes
the thresholds up).

Overhead (reported separately from the backbone, :func:`overhead`): the controller's MACs
(the two linear layers) and the statistics' element operations (one pass each for the sum,
and with ``moments`` the sum of squares and the maximum, over the part of A1 they read).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

STATS = ("moments", "sums")


def first_layer_stats(a: Tensor, stride: int = 1, kind: str = "moments") -> Tensor:
    """Statistics `kind` (module docstring) of the first activation a [N,C,T,H,W], taken
    over every `stride`-th row and column of the map (``aap.stats_stride``: 2 reads a
    quarter of the activation; the statistics of a moving blob barely change).
    ``moments``: [N, 3·C + T], per-channel mean, std, max over (T,H,W), then per-frame mean;
    ``sums``: [N, C·T], the mean of each (channel, frame) map, channel-major.

    Reductions run in the tensor's memory order. A channels_last_3d tensor is reduced as
    [N, T·H·W, C]: reducing it as [N,C,T,H,W] took 4 ms at batch 1, and a one-step max or
    norm over the T·H·W rows of only C = 16 columns still took 1.8 and 0.5 ms (C3D, 2
    threads). The max runs in two steps (:func:`_reduce_rows`, 0.05 ms) and the sums of
    squares are the diagonal of the Gram matrix (one GEMM, 0.14 ms; squaring first took
    0.35 ms). A standard-format tensor is reduced as contiguous rows [N, C, T, H·W]."""
    if kind == "sums":
        s, per_map = _frame_sums(a, stride)
        return s.flatten(1) / per_map
    _check_kind(kind)
    s, sq, mx, per = _raw_stats(a, stride)
    n, c, t = s.shape
    mean = s.sum(2) / per
    std = (sq / per - mean * mean).clamp_min(0.0).sqrt()
    frame = s.sum(1) / (c * (per // t))
    return torch.cat([mean, std, mx, frame], 1)


def _check_kind(kind: str) -> None:
    if kind not in STATS:
        raise ValueError(f"unknown controller statistics {kind!r}; allowed: {', '.join(STATS)}")


def _rows(a: Tensor, stride: int) -> tuple[Tensor, bool]:
    """The (strided) activation as rows in its memory order: [N, T·H·W, C] when it is
    channels_last_3d (a view; a copy if strided), else [N, C, T, H·W]. Contiguous rows
    first (a copy when strided): amax and the norm over the three dimensions of a strided
    view took 0.72 and 0.08 ms (C3D at stride 2, 2 threads), the copy and the three
    reductions over its rows 0.07 ms together."""
    channels_last = not a.is_contiguous() and a.is_contiguous(
        memory_format=torch.channels_last_3d)
    if stride > 1:
        a = a[:, :, :, ::stride, ::stride]
    n, c, t, h, w = a.shape
    if channels_last:
        return a.permute(0, 2, 3, 4, 1).reshape(n, t * h * w, c), True
    return a.reshape(n, c, t, h * w), False


def _frame_sums(a: Tensor, stride: int) -> tuple[Tensor, int]:
    """Sums [N,C,T] of each (channel, frame) map (strided), and the count each reduces."""
    rows, channels_last = _rows(a, stride)
    return _map_sums(rows, channels_last, a.shape[2])


def _map_sums(rows: Tensor, channels_last: bool, t: int) -> tuple[Tensor, int]:
    """:func:`_frame_sums` of rows from :func:`_rows` over `t` frames."""
    if channels_last:
        n, m, c = rows.shape
        return rows.view(n, t, m // t, c).sum(2).transpose(1, 2), m // t
    return rows.sum(3), rows.shape[3]


def _raw_stats(a: Tensor, stride: int) -> tuple[Tensor, Tensor, Tensor, int]:
    """The reductions behind the ``moments`` statistics: sums [N,C,T] over each frame's
    (strided) map, sums of squares [N,C] and maxima [N,C] over (T,H,W), and the count of
    elements per channel they reduce."""
    rows, channels_last = _rows(a, stride)
    t = a.shape[2]
    s, per_map = _map_sums(rows, channels_last, t)
    if channels_last:
        sq = torch.bmm(rows.transpose(1, 2), rows).diagonal(dim1=1, dim2=2)
        mx = _reduce_rows(rows, torch.amax)
    else:
        sq = torch.linalg.vector_norm(rows, 2, dim=(2, 3)) ** 2
        mx = rows.amax(3).amax(2)
    return s, sq, mx, t * per_map


def _reduce_rows(rows: Tensor, op, block: int = 128) -> Tensor:
    """``op(rows, 1)`` of rows [N, M, C] (C small, contiguous): first over M/b groups of b
    rows at once (b·C contiguous columns, which vectorises), then over the b partial rows."""
    n, m, c = rows.shape
    b = math.gcd(m, block)
    return op(op(rows.reshape(n, m // b, b * c), 1).view(n, b, c), 1)


class Controller(nn.Module):
    """Thresholds [N, L, 3] in [0, τ_max] from first-activation statistics (module doc)."""

    def __init__(self, channels: int, frames: int, layers: int, *, hidden: int,
                 tau_max: float, tau_init: float, dims: Sequence[bool] = (True, True, True),
                 active_layers: Sequence[bool] | None = None,
                 mask: Sequence[Sequence[bool]] | None = None, stats_stride: int = 1,
                 stats: str = "moments") -> None:
        """`hidden`, `tau_max`, `tau_init`, `stats`: the `aap` keys of those names (their one
        default is in the config schema; a trained controller's spec stores them; a spec
        saved before ``aap.stats`` existed has none and was trained on ``moments``)."""
        super().__init__()
        _check_kind(stats)
        self.channels, self.frames, self.layers = int(channels), int(frames), int(layers)
        self.stats_stride = int(stats_stride)
        self.stats = stats
        self.tau_max = float(tau_max)
        d = (self.channels * self.frames if stats == "sums"
             else 3 * self.channels + self.frames)
        self.register_buffer("mu", torch.zeros(d))
        self.register_buffer("sigma", torch.ones(d))
        active = [True] * self.layers if active_layers is None else list(active_layers)
        if len(active) != self.layers:
            raise ValueError(f"active_layers has {len(active)} entries for {self.layers} layers")
        table = [[bool(a) and bool(d) for d in dims] for a in active]
        if mask is not None:             # explicit per layer and dimension, combined with both
            if len(mask) != self.layers:
                raise ValueError(f"mask has {len(mask)} rows for {self.layers} layers")
            table = [[t and bool(m) for t, m in zip(row, mrow, strict=True)]
                     for row, mrow in zip(table, mask, strict=True)]
        self.register_buffer("mask", torch.tensor(table, dtype=torch.float32))  # [L, 3]
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # training steps
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 3 * layers))
        nn.init.normal_(self.net[2].weight, 0.0, 0.01)
        frac = min(max(tau_init / self.tau_max, 1e-4), 1 - 1e-4)
        nn.init.constant_(self.net[2].bias, math.log(frac / (1 - frac)))

    @property
    def in_features(self) -> int:
        return self.net[0].in_features

    @torch.no_grad()
    def calibrate(self, stats: Tensor) -> None:
        """Fix the standardisation from statistics [M, d] of the training clips."""
        self.mu.copy_(stats.mean(0))
        self.sigma.copy_(stats.std(0).clamp_min(1e-6))

    def forward(self, a1: Tensor) -> Tensor:
        if not torch.is_grad_enabled():
            return self._inference(a1)
        z = (first_layer_stats(a1, self.stats_stride, self.stats) - self.mu) / self.sigma
        tau = torch.sigmoid(self.net(z)).view(-1, self.layers, 3) * self.tau_max
        return tau * self.mask

    def _inference(self, a1: Tensor) -> Tensor:
        """:meth:`forward` without gradients, in fewer op calls (at stride 1 in the standard
        format ``moments`` takes 18 ATen ops, ``sums`` 9, views included): every linear step after
        the reductions (the means, the standardisation, τ_max and the mask) is folded into
        the first and last layer (:meth:`_folded`). At batch 1 a small op costs its call
        more than its arithmetic: the fold saved 25–37 µs of 180–230 µs per clip (both
        backbones, 2 threads, in-process A/B, 2026-12-07). Equal to :meth:`forward` to
        float rounding."""
        if self.stats == "sums":
            s, per_map = _frame_sums(a1, self.stats_stride)
            w1, b1, w2, b2, scale = self._folded(per_map * s.shape[2], s.shape[2])
            h = torch.addmm(b1, s.flatten(1), w1).relu_()
            return torch.addmm(b2, h, w2).sigmoid_().mul_(scale).view(-1, self.layers, 3)
        s, sq, mx, per = _raw_stats(a1, self.stats_stride)
        w1, b1, w2, b2, scale = self._folded(per, s.shape[2])
        m = s.sum(2)
        # sqrt(per)·std = sqrt(Σx² − (Σx)²/per); the 1/sqrt(per) sits in w1
        u = torch.addcmul(sq, m, m, value=-1.0 / per).clamp_min_(0.0).sqrt_()
        h = torch.addmm(b1, torch.cat([s.flatten(1), u, mx], 1), w1).relu_()
        return torch.addmm(b2, h, w2).sigmoid_().mul_(scale).view(-1, self.layers, 3)

    def _folded(self, per: int, frames: int) -> tuple[Tensor, ...]:
        """(W1ᵀ, b1, W2ᵀ, b2, scale) of :meth:`_inference` for statistics over `per`
        elements per channel in `frames` frames, cached until a parameter or buffer changes
        (their version counters)."""
        lin1, lin2 = self.net[0], self.net[2]
        sources = (lin1.weight, lin1.bias, lin2.weight, lin2.bias, self.mu, self.sigma,
                   self.mask)
        key = (per, frames, *((t.data_ptr(), t._version) for t in sources))
        hit = self.__dict__.get("_folded_cache")
        if hit is not None and hit[0] == key:
            return hit[1]
        c = self.channels
        with torch.no_grad():
            w = lin1.weight / self.sigma                       # standardisation folded
            b1 = lin1.bias - w @ self.mu
            if self.stats == "sums":                 # means of maps of per/frames elements
                w1 = w * (frames / per)
            else:
                w_mean, w_std, w_max, w_frame = w.split([c, c, c, frames], 1)
                # s[c,t] enters the channel mean (1/per) and the frame mean (1/(C·per/T))
                w_sum = (w_mean[:, :, None] / per
                         + w_frame[:, None, :] * frames / (c * per)).flatten(1)
                w1 = torch.cat([w_sum, w_std / math.sqrt(per), w_max], 1)
            scale = (self.mask * self.tau_max).flatten()
            folded = (w1.t().contiguous(), b1.clone(), lin2.weight.t().contiguous(),
                      lin2.bias.clone(), scale)
        self.__dict__["_folded_cache"] = (key, folded)
        return folded

    def macs(self) -> int:
        """Multiply-adds of one call (the two linear layers)."""
        return sum(m.in_features * m.out_features for m in self.net if isinstance(m, nn.Linear))


def stats_ops(first_activation_shape: Sequence[int], stride: int = 1,
              kind: str = "moments") -> int:
    """Element operations of :func:`first_layer_stats` on one sample per element it reads
    of the first activation (C·T·⌈H/s⌉·⌈W/s⌉): 3 for ``moments`` (sum, square-and-sum,
    max), 1 for ``sums``."""
    _check_kind(kind)
    c, t, h, w = (int(s) for s in first_activation_shape[-4:])
    return (1 if kind == "sums" else 3) * c * t * -(-h // stride) * -(-w // stride)
