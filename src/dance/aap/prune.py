"""The AAP pruning function (method.md §3, our reconstruction): frames, then channels, then
spatial features, each against a threshold relative to the uniform share.

For one sample's site input A (C×T×H×W) and thresholds τ = (τ_FR, τ_CH, τ_FE) ≥ 0:

1. frames:   p_FR[t] = mean_{c,h,w} |A| normalised to sum 1; keep t iff T·p_FR[t] ≥ τ_FR;
2. channels: on the kept frames, p_CH[c] (normalised); keep c iff C·p_CH[c] ≥ τ_CH;
3. features: on the kept frames × channels, p_FE[h,w]; keep iff HW·p_FE[h,w] ≥ τ_FE.

The arg-max of each profile is always kept, so the pruned tensor is never empty; τ = 0 keeps
everything (every share is ≥ 0), τ = 1 drops what is below average. Normalising by the sum
is done without a division: n·s_i/Σs ≥ τ ⟺ n·s_i ≥ τ·Σs for the raw sums s. An all-zero
profile (a dead input) keeps everything: 0 ≥ τ·0 (nothing tells its entries apart).

Two forms share these rules:

* :func:`hard_masks` — 0/1 decisions (inference; evaluation in batches; the reference the
  pruned execution in :mod:`dance.aap.execute` is tested against);
* :func:`soft_gates` — the same cascade with each step replaced by
  ``sigmoid((n·p − τ)/temperature)`` (training; the arg-max gate is pinned to 1). As the
  temperature goes to 0 the gates become the hard masks.

Both are batched: `a` is [N,C,T,H,W] and `tau` is [N,3] (one threshold triple per sample).
"""

from __future__ import annotations

import torch
from torch import Tensor

DIMS = ("frame", "channel", "feature")


def _argmax_onehot(s: Tensor) -> Tensor:
    """Bool [N,n]: True at each row's (first) maximum."""
    return torch.zeros_like(s, dtype=torch.bool).scatter_(1, s.argmax(1, keepdim=True), True)


def keep_from_sums(s: Tensor, tau: Tensor) -> Tensor:
    """Hard keep mask [N,n] of non-negative sums `s` [N,n] against thresholds `tau` [N].

    Keep i iff n·s_i ≥ τ·Σ_j s_j (i.e. n·p_i ≥ τ with p the normalised profile), or i is
    the row's arg-max.
    """
    n = s.shape[1]
    keep = s * n >= tau[:, None] * s.sum(1, keepdim=True)
    return keep | _argmax_onehot(s)


def gate_from_sums(s: Tensor, tau: Tensor, temperature: float) -> Tensor:
    """Soft keep gate [N,n] in (0,1]: sigmoid((n·p − τ)/temperature), arg-max pinned to 1."""
    n = s.shape[1]
    total = s.sum(1, keepdim=True).clamp_min(1e-12)
    gate = torch.sigmoid((s * (n / total) - tau[:, None]) / temperature)
    return torch.where(_argmax_onehot(s.detach()), torch.ones_like(gate), gate)


def round_up_channels(s: Tensor, keep: Tensor, multiple: int) -> Tensor:
    """`keep` [N,C] grown to the next multiple of `multiple` kept entries per row (at most
    C), filled with the largest remaining sums `s` (ties: lower index first). Every entry
    kept before stays kept (they are the largest, as the rule keeps the top of the profile
    plus the arg-max)."""
    if multiple <= 1:
        return keep
    c = s.shape[1]
    k = ((keep.sum(1) + multiple - 1) // multiple * multiple).clamp(max=c)       # [N]
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(c, device=s.device).expand_as(order))
    return keep | (rank < k[:, None])


def hard_masks(a: Tensor, tau: Tensor, channel_multiple: int = 1,
               active: tuple[bool, bool, bool] = (True, True, True),
               ) -> tuple[Tensor, Tensor, Tensor]:
    """Frame [N,T], channel [N,C] and feature [N,H,W] keep masks (bool) of `a` [N,C,T,H,W].

    Sequential: the channel profile is taken over the kept frames only, the feature profile
    over kept frames × kept channels (dropped elements contribute nothing to the sums).
    With `channel_multiple` m > 1 the kept channels are topped up to a multiple of m
    (:func:`round_up_channels`) when any channel is dropped. A dimension that is not
    `active` keeps everything (as τ = 0 does) and is not computed.
    """
    n, c, t, h, w = a.shape
    frames = torch.ones(n, t, dtype=torch.bool, device=a.device)
    channels = torch.ones(n, c, dtype=torch.bool, device=a.device)
    features = torch.ones(n, h, w, dtype=torch.bool, device=a.device)
    if not any(active):
        return frames, channels, features
    m = a.detach().abs()
    if active[0] or active[1]:
        ct = m.sum((3, 4))                                  # [N,C,T]
        if active[0]:
            frames = keep_from_sums(ct.sum(1), tau[:, 0])   # [N,T]
        if active[1]:
            ch = (ct * frames[:, None, :]).sum(2)           # [N,C]
            channels = round_up_channels(ch, keep_from_sums(ch, tau[:, 1]), channel_multiple)
    if active[2]:
        sel = (channels[:, :, None] & frames[:, None, :]).to(m.dtype)   # [N,C,T]
        fe = torch.einsum("ncthw,nct->nhw", m, sel).reshape(n, h * w)
        features = keep_from_sums(fe, tau[:, 2]).view(n, h, w)
    return frames, channels, features


def apply_masks(a: Tensor, frames: Tensor, channels: Tensor, features: Tensor) -> Tensor:
    """`a` [N,C,T,H,W] with everything outside frames ∧ channels ∧ features set to 0."""
    dt = a.dtype
    return (a * frames[:, None, :, None, None].to(dt) * channels[:, :, None, None, None].to(dt)
            * features[:, None, None].to(dt))


def soft_gates(a: Tensor, tau: Tensor, temperature: float,
               active: tuple[bool, bool, bool] = (True, True, True), nonneg: bool = False,
               ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """Softly pruned `a` and the gates (frame [N,T], channel [N,C], feature [N,H,W]).

    Each step is computed on the output of the previous one (frames, then channels on the
    frame-gated tensor, then features on the frame- and channel-gated tensor), exactly like
    :func:`hard_masks` with the step function replaced by a sigmoid. A dimension that is not
    `active` (an ablation's, or a layer the controller leaves alone) gets gate 1: unlike the
    hard rule, a sigmoid at τ = 0 would still damp near-zero entries. With `nonneg` (post-ReLU
    input) the |·| passes are skipped.
    """
    n, c, t, h, w = a.shape
    use_fr, use_ch, use_fe = active
    ones = a.new_ones(())
    g_fr, g_ch = ones.expand(n, t), ones.expand(n, c)
    if use_fr or use_ch:
        ct = (a if nonneg else a.abs()).sum((3, 4))           # [N,C,T]
        if use_fr:
            g_fr = gate_from_sums(ct.sum(1), tau[:, 0], temperature)
        if use_ch:
            ch = (ct * g_fr[:, None, :]).sum(2) if use_fr else ct.sum(2)
            g_ch = gate_from_sums(ch, tau[:, 1], temperature)
        sel = g_ch[:, :, None] * g_fr[:, None, :]            # [N,C,T]
        a = a * sel[:, :, :, None, None]
    g_fe = ones.expand(n, h, w)
    if use_fe:
        fe = (a if nonneg else a.abs()).sum((1, 2)).reshape(n, h * w)
        g_fe = gate_from_sums(fe, tau[:, 2], temperature).view(n, h, w)
        a = a * g_fe[:, None, None]
    return a, (g_fr, g_ch, g_fe)
