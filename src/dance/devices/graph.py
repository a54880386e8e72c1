"""DANCE as one exportable graph: the controller and every per-clip decision are tensor ops.

The host's timed path (:class:`dance.aap.execute.PrunedConv`) decides in numpy and plans in
Python, so it cannot leave PyTorch. :class:`GraphNet` computes the same network with torch
ops only, so ``torch.onnx.export`` captures the whole of it — controller included — and
ONNX Runtime on a device runs DANCE, not a frozen pruning pattern. Batch 1.

Per prunable conv, on the tensor A [C,T,H,W] it reads, with its thresholds τ from the
controller (both computed in the graph from this clip):

* **decisions** — the rule of :func:`dance.aap.prune.hard_masks` (frames, then channels on
  the kept frames, then features on kept frames × channels; arg-max always kept; channel
  count rounded up to ``channel_multiple`` with the next most salient ones). The rank used
  by the round-up is a pairwise count (no sort, so no data-dependent TopK size);
* **channels** — ``NonZero`` of the channel mask gives the kept indices; the input and the
  weight are gathered to them (``Gather`` on the input and on ``W[:, K]``): the conv's input
  channels, and so its work, shrink with the kept share;
* **frames** — an output frame that no kept frame reaches holds only the bias (its window
  reads zeros); the others are computed. ``NonZero`` of the reached-output mask gives them;
  each one's kT-frame window is gathered from the frame-masked input (dropped frames zero)
  into the batch dimension and one conv with no temporal padding computes all of them;
  ``ScatterND`` puts them at their frames. Exact, and the conv work scales with the reached
  output frames (the same saving as the host's ``compact`` execution);
* **features** — the dropped positions are zeroed (multiplied by the [H,W] mask), as on
  the host: counted in the MAC model, not skipped in time.

Layers whose thresholds the controller forces to 0 (``Controller.mask``) run the plain conv,
decided at export time. The graph's second output ``kept`` [L,3] holds each layer's kept
frames, channels and feature positions (counts), so a device log can be checked against the
decisions PyTorch takes on the same clip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dance.aap.model import AAPNet
from dance.nn.probe import example_input, probe_calls


def keep_mask(s: Tensor, tau: Tensor) -> Tensor:
    """Bool [n] of non-negative sums `s` [n] vs scalar `tau`: n·s_i ≥ τ·Σs or i = argmax."""
    n = s.shape[0]
    onehot = torch.arange(n) == s.argmax()
    return (s * n >= tau * s.sum()) | onehot


def round_up(s: Tensor, keep: Tensor, multiple: int) -> Tensor:
    """`keep` grown to a multiple of `multiple` entries with the largest remaining sums
    (ties: lower index first) — :func:`dance.aap.prune.round_up_channels` for one clip."""
    if multiple <= 1:
        return keep
    c = s.shape[0]
    k = torch.clamp((keep.sum() + multiple - 1) // multiple * multiple, max=c)
    idx = torch.arange(c)
    greater = s[None, :] > s[:, None]                           # [i, j]: s_j > s_i
    tie_before = (s[None, :] == s[:, None]) & (idx[None, :] < idx[:, None])
    rank = (greater | tie_before).sum(1)
    return keep | (rank < k)


class GraphConv(nn.Module):
    """One prunable conv with the pruning rule in front, in tensor ops (module docstring)."""

    def __init__(self, conv: nn.Conv3d, index: int, active: tuple[bool, bool, bool],
                 taus: dict, nonneg: bool, channel_multiple: int) -> None:
        super().__init__()
        if conv.groups != 1 or tuple(conv.dilation) != (1, 1, 1) or conv.padding_mode != "zeros":
            raise ValueError(f"graph export needs groups=1, dilation=1, zero padding: {conv}")
        self.conv = conv
        self.index = index
        self.active = tuple(bool(a) for a in active)
        self.__dict__["taus"] = taus            # shared holder: {"tau": [1, L, 3]}
        self.nonneg = nonneg
        self.channel_multiple = int(channel_multiple)

    def forward(self, x: Tensor) -> Tensor:
        use_fr, use_ch, use_fe = self.active
        kept = self.taus["kept"]
        c, t, h, w = x.shape[1:]
        if not any(self.active):
            kept.append(torch.tensor([t, c, h * w], dtype=x.dtype))
            return self.conv(x)
        if x.shape[0] != 1:
            raise ValueError(f"the DANCE graph runs one clip at a time, got batch {x.shape[0]}")
        tau = self.taus["tau"][0, self.index]                   # [3]
        a = x[0]
        mag = a if self.nonneg else a.abs()
        ct = mag.sum((2, 3))                                    # [C, T]
        frames = keep_mask(ct.sum(0), tau[0]) if use_fr else None
        if use_ch:
            s = ct.sum(1) if frames is None else (ct * frames.to(ct.dtype)).sum(1)
            channels = round_up(s, keep_mask(s, tau[1]), self.channel_multiple)
            idx = channels.nonzero().squeeze(1)
            a = a.index_select(0, idx)
            mag = mag.index_select(0, idx)
            weight = self.conv.weight.index_select(1, idx)
            n_ch = channels.sum().to(x.dtype)
        else:
            weight = self.conv.weight
            n_ch = torch.tensor(float(c), dtype=x.dtype)
        if frames is not None:
            fmask = frames.to(a.dtype)
            a = a * fmask[None, :, None, None]
            mag = mag * fmask[None, :, None, None]
        if use_fe:
            features = keep_mask(mag.sum((0, 1)).reshape(-1), tau[2]).view(h, w)
            a = a * features.to(a.dtype)
            n_fe = features.sum().to(x.dtype)
        else:
            n_fe = torch.tensor(float(h * w), dtype=x.dtype)
        n_fr = torch.tensor(float(t), dtype=x.dtype) if frames is None else frames.sum().to(x.dtype)
        kept.append(torch.stack([n_fr, n_ch, n_fe]))
        if frames is None:
            return F.conv3d(a[None], weight, self.conv.bias, self.conv.stride, self.conv.padding)
        return self._reached_frames(a, weight, frames, t)

    def _reached_frames(self, a: Tensor, weight: Tensor, frames: Tensor, t: int) -> Tensor:
        """Conv of the frame-masked `a` [C',T,H,W], computing only output frames that a kept
        frame reaches (batched kT-frame windows); the rest hold the bias."""
        conv = self.conv
        kt = conv.kernel_size[0]
        st, pt = conv.stride[0], conv.padding[0]
        t_out = (t + 2 * pt - kt) // st + 1
        # window of output frame o: padded positions o·s_T .. o·s_T + kT − 1
        windows = torch.arange(t_out)[:, None] * st + torch.arange(kt)[None, :]   # [T_out, kT]
        padded = torch.cat([frames.new_zeros(pt), frames, frames.new_zeros(pt)])
        reached = padded[windows].any(1)
        out_idx = reached.nonzero().squeeze(1)                                  # [n]
        # zero frames by Concat, not F.pad: ONNX's version converter cannot move Pad-18
        # down to the opsets older runtimes read (export.export_onnx)
        if pt:
            zeros = a.new_zeros(a.shape[0], pt, *a.shape[2:])
            a = torch.cat([zeros, a, zeros], 1)                                  # [C',T+2p,H,W]
        batch = a[:, windows.index_select(0, out_idx)].permute(1, 0, 2, 3, 4)   # [n,C',kT,H,W]
        y = F.conv3d(batch, weight, conv.bias, (1, *conv.stride[1:]),
                     (0, *conv.padding[1:]))                                     # [n,Co,1,H',W']
        y = y[:, :, 0]                                                           # [n,Co,H',W']
        cout = weight.shape[0]
        base = y.new_zeros(t_out, cout, y.shape[2], y.shape[3])
        if conv.bias is not None:
            base = base + conv.bias[None, :, None, None]
        out = base.index_put((out_idx,), y)                                     # [T_out,Co,..]
        return out.permute(1, 0, 2, 3)[None]


def _bins(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive-pool bins: [floor(i·size/out), ceil((i+1)·size/out))."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


class StaticAdaptivePool3d(nn.Module):
    """An adaptive 3D max/avg pool for one input size, as gathers and reductions.

    ONNX has no adaptive max pool (and its pools cannot express uneven or overlapping
    bins). Bins are boxes, so the pool is separable: per dimension, max pooling gathers each
    bin's positions (short bins repeat their first position, which a max ignores) and takes
    the max; average pooling multiplies by a fixed [out, in] averaging matrix. Same values
    as the adaptive pool (avg: to float rounding)."""

    def __init__(self, kind: str, in_size: tuple[int, ...], out_size: tuple[int, ...]) -> None:
        super().__init__()
        self.kind = kind
        self.in_size = tuple(in_size)
        for d, (size, out) in enumerate(zip(in_size, out_size, strict=True)):
            bins = _bins(size, out)
            if kind == "max":
                width = max(b - a for a, b in bins)
                idx = [[min(a + k, b - 1) for k in range(width)] for a, b in bins]
                self.register_buffer(f"idx{d}", torch.tensor(idx, dtype=torch.long))
            else:
                mat = torch.zeros(out, size)
                for i, (a, b) in enumerate(bins):
                    mat[i, a:b] = 1.0 / (b - a)
                self.register_buffer(f"mat{d}", mat)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[2:]) != self.in_size:
            raise ValueError(f"this pool was fixed for inputs {self.in_size}, got {tuple(x.shape[2:])}")
        for d in range(3):
            dim = 2 + d
            if self.kind == "max":
                idx = getattr(self, f"idx{d}")                       # [out, width]
                g = x.index_select(dim, idx.reshape(-1))
                g = g.unflatten(dim, tuple(idx.shape))
                x = g.amax(dim + 1)
            else:
                x = torch.movedim(torch.movedim(x, dim, -1) @ getattr(self, f"mat{d}").T, -1, dim)
        return x


def static_pools(model: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """Replace every adaptive 3D pool by a :class:`StaticAdaptivePool3d` for the input size
    it sees at clip shape `input_shape` (in place; exact)."""
    pools = {name: m for name, m in model.named_modules()
             if isinstance(m, (nn.AdaptiveMaxPool3d, nn.AdaptiveAvgPool3d))}
    seen = {c.name: tuple(c.input.shape[2:]) for c in probe_calls(
        model, example_input(model, input_shape), lambda n, _: n in pools)}
    for name, pool in pools.items():
        size = seen[name]
        out = pool.output_size
        out = (out,) * 3 if isinstance(out, int) else tuple(out)
        out = tuple(s if o is None else o for o, s in zip(out, size, strict=True))
        kind = "max" if isinstance(pool, nn.AdaptiveMaxPool3d) else "avg"
        model.set_submodule(name, StaticAdaptivePool3d(kind, size, out))
    return model


class ControllerTap(nn.Module):
    """The first activation, plus the controller on its output (thresholds to `taus`)."""

    def __init__(self, act: nn.Module, controller: nn.Module, taus: dict) -> None:
        super().__init__()
        self.act = act
        self.controller = controller
        self.__dict__["taus"] = taus

    def forward(self, x: Tensor) -> Tensor:
        y = self.act(x)
        self.taus["tau"] = self.controller(y)
        return y


class GraphNet(nn.Module):
    """Backbone + controller of an :class:`AAPNet` as one exportable module:
    ``forward(x[1,3,T,H,W]) → (logits [1, classes], kept [L, 3])``. The AAPNet is not
    changed (its dense backbone is copied; the controller is shared)."""

    def __init__(self, net: AAPNet) -> None:
        super().__init__()
        if net.controller is None:
            raise ValueError("GraphNet needs an AAPNet with a controller")
        backbone = static_pools(net.dense_copy().eval(), net.input_shape)
        for p in backbone.parameters():
            p.requires_grad_(False)
        self.backbone = backbone
        self.taus: dict = {}         # placeholder; forward links a fresh holder into the parts
        active = net.state.active
        for i, name in enumerate(net.names):
            conv = backbone.get_submodule(name)
            backbone.set_submodule(name, GraphConv(conv, i, active[i], self.taus,
                                                     net.state.nonneg, net.state.channel_multiple))
        act = backbone.first_act
        act_name = next(n for n, m in backbone.named_modules() if m is act)
        backbone.set_submodule(act_name, ControllerTap(act, net.controller.eval(), self.taus))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # A fresh holder per call, linked into every part (export tracing copies Python
        # attributes, so a holder shared since construction would not stay shared).
        shared: dict = {"tau": None, "kept": []}
        for m in self.backbone.modules():
            if isinstance(m, (GraphConv, ControllerTap)):
                m.__dict__["taus"] = shared
        logits = self.backbone(x)
        return logits, torch.stack(shared["kept"])
