"""Pruned execution of one conv at batch 1: dropped frames and channels never reach a conv.

Given the keep decisions of the tensor a conv reads (frames F, channels K, features S), the
conv output must equal the dense conv of the input zeroed outside F ∧ K ∧ S (the *masked*
reference, :func:`dance.aap.prune.apply_masks` + the dense conv). :class:`PrunedConv` gets
there without computing on dropped frames or channels:

* **channels** — the kept channels are gathered out of the input and the weight is sliced to
  the same input channels (``W[:, K]``): the conv's work scales with |K|/C.
* **frames** — a conv over just the kept frames is *not* the conv over zeroed frames when
  the kernel has temporal extent kT > 1 (an output frame mixes kT neighbouring inputs).
  The temporal-tap decomposition is exact: write the 3D conv as a sum over its temporal taps
  k of 2D-in-space convs, y[t_o] = Σ_k W[:,:,k] ⋆ x[t_o·s_T − p_T + k]. Every kept input
  frame t_i contributes through tap k to output frame t_o = (t_i + p_T − k)/s_T when that is
  an integer in range. So the kept frames go through one conv with the taps stacked as output
  channels — weight (Cout·n_k, |K|, 1, kH, kW), stride (1, sH, sW), padding (0, pH, pW) — and
  each (tap, input frame) result is added into its output frame with ``index_add_``. With a
  temporal stride s_T > 1 only taps k ≡ t_i + p_T (mod s_T) are valid for frame t_i, so the
  kept frames are grouped by that residue and each group is convolved with its own taps only
  (no tap whose result would be thrown away is computed, apart from the few that fall off the
  clip's ends). Output frames no kept frame reaches stay 0 (+ bias), as in the reference.
  When no frame is dropped, the plain conv runs on the channel-gathered input. The common
  case, one contiguous run of kept frames at temporal stride 1, needs neither: the frames
  around the run are zeros like the padding, so the plain conv reads the run as a view of
  the input with a larger temporal padding (:meth:`PrunedConv._run`) and only its outputs
  are placed into the output, in the input's memory format. Gathering the run with its zero
  neighbours and scattering the outputs back had cost as much as the dropped frames saved
  (C3D conv2, half the frames: 1.15× of dense before, 0.58× after, 2 threads).
* **features** — the dropped spatial positions are zeroed (exactness), and the conv runs
  only over the *window* of outputs that read a kept position: the bounding box of the kept
  features, grown by the kernel's reach (:func:`crop_window`). Every output outside it reads
  only zeros and holds just the bias, so it is filled, not computed. The learned masks keep
  one compact blob (the moving actor), so the window is small and the conv's work scales
  with its area; when the window would cover most of the map (`crop_max`), the whole map is
  convolved instead. MACs count kept positions only (:mod:`dance.measure.macs`), so the
  window's area is the realised share and the kept share the ideal one.

Every conv goes through :func:`dance.nn.conv3d`, the function the dense reference uses, so
dense and pruned runs share one kernel family. The index tensors of the scatter depend only
on the kept frame set and are cached per conv. Why this module is long: the three execution
paths of one conv (channel gather, frame taps or compact sequence, feature window) share one
plan object, its weights and its caches; split apart they would hand that state around.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dance.nn.conv import conv3d

FRAME_EXEC = ("auto", "compact", "taps")
SLICED_WEIGHTS = 8       # weights sliced to a kept channel set, kept per plan (LRU) ...
SLICED_BYTES = 32 << 20  # ... within this many bytes per plan (a paper-size conv5 weight: 28 MB)
CHANNELS_LAST = torch.channels_last_3d


class PrunedConv:
    """Batch-1 pruned execution of `conv` (zeros padding, groups 1, dilation 1).

    The weights are snapshotted at construction (rebuild after changing the conv).
    ``conv.weight``/``conv.bias`` may be replaced first by a BatchNorm-folded copy; the plan
    does not care where the numbers come from.
    """

    def __init__(self, conv: nn.Conv3d, nonneg: bool = False, frame_exec: str = "auto",
                 tap_cost: float = 2.0, channel_multiple: int = 1,
                 crop_max: float = 0.7) -> None:
        if conv.groups != 1 or tuple(conv.dilation) != (1, 1, 1) or conv.padding_mode != "zeros":
            raise ValueError(f"pruned execution needs groups=1, dilation=1, zero padding: {conv}")
        if isinstance(conv.padding, str):
            raise ValueError("pruned execution needs numeric padding")
        w = conv.weight.detach().contiguous()
        # the same weight in channels_last_3d, for inputs in that format (a conv with mixed
        # formats reorders one of them per call)
        self.weight_cl = w.contiguous(memory_format=CHANNELS_LAST)
        b = conv.bias
        self.nonneg = nonneg
        if frame_exec not in FRAME_EXEC:
            raise ValueError(f"frame_exec {frame_exec!r} unknown; allowed: {', '.join(FRAME_EXEC)}")
        self.frame_exec = frame_exec
        self.channel_multiple = int(channel_multiple)
        self.tap_cost = float(tap_cost)
        self.crop_max = float(crop_max)
        self.weight = w
        # Every index tensor lives beside the weights; decisions are made on the host (the
        # kept sets give the shapes the convs run at), from the profiles copied there.
        self.device = w.device
        self.on_cpu = w.device.type == "cpu"
        self.bias = None if b is None else b.detach().contiguous()
        self.cout, self.cin, self.kt, self.kh, self.kw = w.shape
        self.stride = tuple(int(s) for s in conv.stride)
        self.padding = tuple(int(p) for p in conv.padding)
        st = self.stride[0]
        self.stride2d = (1, self.stride[1], self.stride[2])
        self.padding2d = (0, self.padding[1], self.padding[2])
        # Tap groups by residue r = (t_i + p_T) mod s_T: taps k ≡ r (mod s_T), Cout-major
        # stacked weight (Cout·n_k, C, 1, kH, kW): channel co·n_k + j = tap taps[j] of co.
        self.groups: dict[int, tuple[list[int], Tensor]] = {}
        for r in range(st):
            taps = [k for k in range(self.kt) if k % st == r]
            if taps:
                stacked = w[:, :, taps].permute(0, 2, 1, 3, 4).reshape(
                    self.cout * len(taps), self.cin, 1, self.kh, self.kw).contiguous()
                self.groups[r] = (taps, stacked)
        self._cache: dict[tuple[int, tuple[int, ...]], list] = {}
        self._sliced_cache: OrderedDict[tuple[int, bytes], Tensor] = OrderedDict()
        self._sliced_bytes = 0

    def _sliced(self, weight: Tensor, channels: Tensor) -> Tensor:
        """``weight[:, channels]``, the last `SLICED_WEIGHTS` slices kept per plan within
        `SLICED_BYTES` (on the CPU): a clip whose kept channel set was seen recently skips
        the copy of the weight (C3D's conv4b at the default width: 1.6 MB per call, about as
        long as its pruned conv)."""
        if not self.on_cpu:
            return weight.index_select(1, channels)
        cache = self._sliced_cache
        key = (weight.data_ptr(), channels.numpy().tobytes())
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit
        hit = weight.index_select(1, channels)
        size = hit.numel() * hit.element_size()
        if size <= SLICED_BYTES:
            cache[key] = hit
            self._sliced_bytes += size
            while len(cache) > SLICED_WEIGHTS or self._sliced_bytes > SLICED_BYTES:
                old = cache.popitem(last=False)[1]
                self._sliced_bytes -= old.numel() * old.element_size()
        return hit

    def _index(self, values: Sequence[int]) -> Tensor:
        return torch.tensor(values, dtype=torch.long, device=self.device)

    def _host(self, a: Tensor) -> np.ndarray:
        """`a` as a numpy array (a view on the CPU, a copy from a GPU)."""
        return a.numpy() if self.on_cpu else a.cpu().numpy()

    def _to_device(self, a: np.ndarray) -> Tensor:
        t = torch.from_numpy(a)
        return t if self.on_cpu else t.to(self.device)

    def out_frames(self, t: int) -> int:
        return (t + 2 * self.padding[0] - self.kt) // self.stride[0] + 1

    def _plan(self, t: int, frames: tuple[int, ...]) -> list:
        """Per residue group with kept frames: (frame index tensor, stacked weight, n_k,
        source positions | None (= all), target output frames | None (= reaches none)).
        Cached per (T, kept frames)."""
        key = (t, frames)
        plan = self._cache.get(key)
        if plan is not None:
            return plan
        st, pt = self.stride[0], self.padding[0]
        t_out = self.out_frames(t)
        plan = []
        for r, (taps, stacked) in self.groups.items():
            fr = [f for f in frames if (f + pt) % st == r]
            if not fr:
                continue
            src, tgt = [], []
            for j, k in enumerate(taps):
                for i, f in enumerate(fr):
                    to = (f + pt - k) // st
                    if 0 <= to < t_out:
                        src.append(j * len(fr) + i)
                        tgt.append(to)
            full = len(src) == len(taps) * len(fr)
            plan.append((self._index(fr), stacked, len(taps),
                         None if full else self._index(src),
                         self._index(tgt) if tgt else None))
        self._cache[key] = plan
        return plan

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        return ((h + 2 * self.padding[1] - self.kh) // self.stride[1] + 1,
                (w + 2 * self.padding[2] - self.kw) // self.stride[2] + 1)

    def _fill(self, x: Tensor, t_out: int, hw: int) -> Tensor:
        """[Cout, T_out, H'W'] holding what an output frame no kept frame reaches holds."""
        if self.bias is None:
            return x.new_zeros(self.cout, t_out, hw)
        return self.bias.view(-1, 1, 1).expand(self.cout, t_out, hw).clone()

    def _use_compact(self, t: int, frames: tuple[int, ...]) -> bool:
        """Frame execution: ``compact`` (plain conv over the gap-shortened sequence) or
        ``taps`` (temporal-tap decomposition); ``auto`` picks the cheaper by a cost model
        in tap-frame units: compact = output frames × kT; taps = computed (tap, frame)
        pairs × `tap_cost` (the stacked (1,kH,kW) conv writes kT× the outputs and ran
        about 2× slower per MAC than the 3D conv here, docs/method.md)."""
        if self.frame_exec != "auto":
            return self.frame_exec == "compact"
        key = ("choice", t, frames)
        hit = self._cache.get(key)
        if hit is None:
            t_c = self._compact(t, frames)[4]
            compact_cost = ((t_c + 2 * self.padding[0] - self.kt) // self.stride[0] + 1) * self.kt
            tap_cost = sum(nk * len(fr) for fr, _, nk, _, tgt in self._plan(t, frames)
                           if tgt is not None) * self.tap_cost
            hit = self._cache[key] = compact_cost <= tap_cost
        return hit

    def _run(self, t: int, frames: tuple[int, ...]) -> tuple[int, int, int, int, int, int] | None:
        """One contiguous run of kept frames [f0, f1] at temporal stride 1: the plain conv
        over just that run, with temporal padding P, equals the reference on every output
        frame the run reaches (the frames around it are dropped or padding, zeros either
        way), so nothing is copied or zeroed before the conv. Output j of the padded conv is
        output frame f0 + j − P + p_T. Returns (f0, f1, P, o0, j0, n): output frames
        o0 … o0+n−1 are the conv's outputs j0 … j0+n−1 (every other output frame is reached
        by no kept frame and holds the bias); None when `frames` is not one run, the stride
        is not 1, or the run reaches no output frame. Cached per (T, kept frames)."""
        key = ("run", t, frames)
        if key in self._cache:
            return self._cache[key]
        f0, f1 = frames[0], frames[-1]
        kt, pt = self.kt, self.padding[0]
        hit = None
        if self.stride[0] == 1 and f1 - f0 + 1 == len(frames):
            o0, o1 = max(0, f0 + pt - kt + 1), min(self.out_frames(t) - 1, f1 + pt)
            if o0 <= o1:
                pad = max(f0 + pt - o0, o1 - f1 - 1 + kt - pt, 0)
                hit = (f0, f1, pad, o0, o0 - f0 + pad - pt, o1 - o0 + 1)
        self._cache[key] = hit
        return hit

    def _compact(self, t: int, frames: tuple[int, ...]) -> tuple:
        """Gap-shortened frame sequence for a plain 3D conv (cached per (T, kept frames)).

        Keeps every kept frame and, from each run of dropped frames, only the zero frames the
        conv needs to produce the outputs next to the kept ones: an interior gap is shortened
        by multiples of s_T while ≥ kT − 1 frames remain (so no window reaches across it),
        leading/trailing gaps as far as the first/last reached output allows. Removing
        multiples of s_T keeps the output grid aligned, so the plain conv over the shortened
        sequence (dropped frames zeroed) gives exactly the reference outputs; each compact
        output is mapped back through a kept frame of its window.

        Returns (retained frame index tensor, positions to zero | None, compact output
        positions to copy | None (= all), their output frames | None (= identity), T_c,
        output frames no kept frame reaches | None).
        """
        key = ("c", t, frames)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        kt, st, pt = self.kt, self.stride[0], self.padding[0]
        t_out = self.out_frames(t)
        kept = set(frames)
        f0, last = frames[0], frames[-1]
        reach = [(f0 + pt - k) // st for k in range(kt)
                 if (f0 + pt - k) % st == 0 and 0 <= (f0 + pt - k) // st < t_out]
        lead = st * (min(min(reach) * st, f0) // st) if reach else 0
        retained = list(range(lead, f0 + 1))
        for a, b in zip(frames, frames[1:], strict=False):
            gap = b - a - 1
            cut = st * max(0, (gap - (kt - 1)) // st) if gap >= kt - 1 else 0
            keep_gap = gap - cut
            # keep the first ceil and last floor halves of the remaining zero frames
            left = (keep_gap + 1) // 2
            retained += list(range(a + 1, a + 1 + left))
            retained += list(range(b - (keep_gap - left), b + 1))
        reach = [(last + pt - k) // st for k in range(kt)
                 if (last + pt - k) % st == 0 and 0 <= (last + pt - k) // st < t_out]
        o_max = max(reach) if reach else 0
        removed = (last - lead + 1) - len([f for f in retained])  # frames cut inside
        tail = 0
        while tail < t - 1 - last:
            t_c = len(retained) + tail
            if (t_c + 2 * pt - kt) // st + 1 >= o_max - (lead + removed) // st + 1:
                break
            tail += 1
        retained += list(range(last + 1, last + 1 + tail))
        t_c = len(retained)
        zeros = [i for i, f in enumerate(retained) if f not in kept]
        t_out_c = (t_c + 2 * pt - kt) // st + 1
        src, tgt = [], []
        for oc in range(t_out_c):
            for k in range(kt):
                pos = oc * st - pt + k
                if 0 <= pos < t_c and retained[pos] in kept:
                    o = (retained[pos] + pt - k) // st
                    src.append(oc)
                    tgt.append(o)
                    break
        identity = t_c == t          # nothing cut: the conv output is the reference as is
        unreached = sorted(set(range(t_out)) - set(tgt))
        index = self._index
        hit = (index(retained), index(zeros) if zeros else None,
               None if identity or len(src) == t_out_c else index(src),
               None if identity else index(tgt), t_c,
               index(unreached) if unreached and not identity else None)
        self._cache[key] = hit
        return hit

    def __call__(self, x: Tensor, tau: Sequence[float] | None = None,
                 decision: tuple | None = None) -> tuple[Tensor, tuple]:
        """Pruned conv of one clip's site input `x` [1,C,T,H,W].

        Either `tau` = (τ_FR, τ_CH, τ_FE) (the pruning function decides, on this tensor) or
        a fixed `decision` = (kept frames | None, kept channel indices | None, feature mask
        [H,W] | None), None meaning "all kept". Returns (output, decision). The output equals
        the dense conv of `x` zeroed outside the kept sets (to float rounding).

        Decisions follow :func:`dance.aap.prune.hard_masks` (same rules; the small profile
        arithmetic runs in numpy, which costs far less per call than torch ops at this size).
        `x` must be non-negative when `nonneg` is set (post-ReLU site inputs): the profiles
        then skip the ``abs`` pass.
        """
        if decision is None and not (tau[0] > 0 or tau[1] > 0 or tau[2] > 0):
            # nothing is decided for this clip: the dense conv, with no bookkeeping
            return conv3d(x, self.weight_cl if is_channels_last(x) else self.weight, self.bias,
                          self.stride, self.padding), (None, None, None)
        _, c, t, h, w = x.shape
        a = site = x[0]
        if decision is not None:
            frames, channels, features = decision
            tau_fe = 0.0
        else:
            tau_fr, tau_ch, tau_fe = (float(v) for v in tau)
            frames = channels = features = None
            # Without a channel decision one reduction serves every profile: the sums over
            # the channels [T, H·W] give the frame profile and, over the kept frames, the
            # feature profile (numpy on a small array instead of a second pass over `x`).
            thw = None
            if tau_fr > 0 or tau_ch > 0 or tau_fe > 0:
                mag = a if self.nonneg else a.abs()
                if tau_ch > 0:
                    ct = self._host(sum_in_memory_order(mag, (2, 3)))     # [C,T]
                else:
                    thw = self._host(sum_in_memory_order(mag, (0,))).reshape(t, h * w)
                if tau_fr > 0:
                    keep = _keep(ct.sum(0) if thw is None else thw.sum(1), tau_fr)
                    if not keep.all():
                        frames = np.flatnonzero(keep).tolist()
                if tau_ch > 0:
                    s = (ct if frames is None else ct[:, frames]).sum(1)
                    keep = _round_up(s, _keep(s, tau_ch), self.channel_multiple)
                    if not keep.all():
                        channels = self._to_device(np.flatnonzero(keep))
        if frames is not None and len(frames) == t:
            frames = None
        if channels is not None:
            a = a.index_select(0, channels)
        plan = compact = run = None
        if frames is None:
            parts = [a]
        elif (run := self._run(t, tuple(frames))) is not None and (
                self.frame_exec != "taps"):
            parts = [a[:, run[0]:run[1] + 1]]     # a view: the run's frames, nothing copied
        elif self._use_compact(t, tuple(frames)):
            compact = self._compact(t, tuple(frames))
            if compact[4] == t:          # nothing cut: zero the dropped frames of a copy
                part = a.clone() if channels is None else a
            else:
                part = a.index_select(1, compact[0])
            if compact[1] is not None:
                part.index_fill_(1, compact[1], 0.0)
            parts = [part]
        else:
            plan = self._plan(t, tuple(frames))
            parts = [a.index_select(1, fr) for fr, *_ in plan]
        keep_hw = None               # the feature decision as a numpy bool map [H,W]
        if tau_fe > 0:
            if thw is not None:
                fe = (thw if frames is None else thw[frames]).sum(0)
            else:                    # over the kept channels: the gathered parts
                fe = None
                for part in parts:
                    s = sum_in_memory_order(part if self.nonneg else part.abs(), (0, 1))
                    fe = s if fe is None else fe + s
                fe = self._host(fe).reshape(-1)
            keep = _keep(fe, tau_fe)
            if not keep.all():
                keep_hw = keep.reshape(h, w)
                features = self._to_device(keep_hw.astype(np.float32))
        elif features is not None:
            keep_hw = self._host(features) > 0
        window = None if keep_hw is None else self._window(keep_hw, h, w)
        if window is not None:       # only the window's input rows/columns, dropped ones zeroed
            inner = window.mask_inside(keep_hw)
            mask = None if inner is None else self._to_device(inner.astype(np.float32))
            parts = [_crop(part, mask, window) for part in parts]
        elif features is not None:   # in place unless the part is still a view of `x`
            parts = [part * features if _shares_memory(part, x) else part.mul_(features)
                     for part in parts]
        decision = (frames, channels, features)
        t_out = self.out_frames(t)
        ho, wo = self._out_hw(h, w) if window is None else window.out_size
        if plan is None:
            inp = x if parts[0] is site else parts[0].unsqueeze(0)
            if channels is not None:     # (slicing the standard layout was the fastest)
                wt = self._sliced(self.weight, channels)
            else:
                wt = self.weight_cl if is_channels_last(inp) else self.weight
            padding = self.padding if window is None else (self.padding[0], 0, 0)
            if run is not None:
                padding = (run[2], *padding[1:])
            y = conv3d(inp, wt, self.bias, self.stride, padding)
            if run is not None:
                return self._embed(y, window, h, w, (t_out, *run[3:])), decision
            if compact is None or compact[3] is None:
                return self._embed(y, window, h, w), decision
            _, _, src, tgt, _, unreached = compact
            y = y[0].flatten(2)                                  # [Cout, T_c_out, H'W']
            out = y.new_empty(self.cout, t_out, y.shape[2])
            out.index_copy_(1, tgt, y if src is None else y.index_select(1, src))
            if unreached is not None:                            # frames no kept frame reaches
                if self.bias is None:
                    out.index_fill_(1, unreached, 0.0)
                else:
                    out.index_copy_(1, unreached, self.bias.view(-1, 1, 1).expand(
                        self.cout, len(unreached), y.shape[2]))
            return self._embed(out.view(1, self.cout, t_out, ho, wo), window, h, w), decision
        padding2d = self.padding2d if window is None else (0, 0, 0)
        outs = []
        for part, (fr, stacked, nk, src, tgt) in zip(parts, plan, strict=True):
            if tgt is None:     # these frames reach no output frame (e.g. at a clip end)
                continue
            wr = stacked if channels is None else self._sliced(stacked, channels)
            y = conv3d(part.unsqueeze(0), wr, None, self.stride2d, padding2d)
            y = y.view(self.cout, nk * len(fr), ho * wo)
            outs.append((y if src is None else y.index_select(1, src), tgt))
        out = self._fill(x, t_out, ho * wo)
        for y, tgt in outs:
            out.index_add_(1, tgt, y)
        return self._embed(out.view(1, self.cout, t_out, ho, wo), window, h, w), decision

    def _window(self, keep: np.ndarray, h: int, w: int) -> Window | None:
        """The output window of the bool feature map `keep` [H,W], or None when convolving
        the whole map is cheaper (window input area > `crop_max` of the map's)."""
        rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
        if rows.size == 0:
            return None
        key = ("win", h, w, int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))
        if key not in self._cache:      # one window per bounding box of the kept features
            win = crop_window(keep, (self.kh, self.kw), self.stride[1:], self.padding[1:])
            self._cache[key] = (None if win is None or win.in_area > self.crop_max * h * w
                                else win)
        return self._cache[key]

    def _filled(self, y: Tensor, t_out: int, ho: int, wo: int) -> Tensor:
        """The full output [1,Cout,T_out,H',W'] as it is where no kept input
        reaches: the bias (or 0), in `y`'s memory format; cached per shape and format (a
        clone of it and one copy of the computed part cost two op calls; filling an empty
        output around the part took four to six, 2026-12-07)."""
        fmt = _format(y)
        key = ("fill", t_out, ho, wo, fmt, y.dtype)
        full = self._cache.get(key)
        if full is None:
            full = torch.empty(1, self.cout, t_out, ho, wo, dtype=y.dtype, device=y.device,
                               memory_format=fmt).zero_()
            if self.bias is not None:
                full += self.bias.view(1, -1, 1, 1, 1).to(y.dtype)
            self._cache[key] = full
        return full

    def _embed(self, y: Tensor, window: Window | None, h: int, w: int,
               span: tuple[int, int, int, int] | None = None) -> Tensor:
        """Window output `y` [1,Cout,T',h',w'] placed into the full map; every output
        outside the window reads only zeros, so it holds the bias. `span` = (T_out, o0, j0,
        n) (a frame run, :meth:`_run`): y's frames j0 … j0+n−1 are output frames
        o0 … o0+n−1 of T_out, the others hold the bias too."""
        t_out, o0, j0, n = (y.shape[2], 0, 0, y.shape[2]) if span is None else span
        if window is None and (o0, j0, n) == (0, 0, t_out) and y.shape[2] == t_out:
            return y
        full = self._filled(y, t_out, *self._out_hw(h, w)).clone()
        r0, c0 = (window.rows[0], window.cols[0]) if window else (0, 0)
        full.narrow(2, o0, n).narrow(3, r0, y.shape[3]).narrow(4, c0, y.shape[4]).copy_(
            y.narrow(2, j0, n))
        return full


class Window:
    """Where a conv must run for a feature mask: output rows `rows` and columns `cols`
    (inclusive ranges), and the input rows/columns they read, `in_rows`/`in_cols` (inclusive,
    may reach into the zero padding beyond the map)."""

    def __init__(self, rows: tuple[int, int], cols: tuple[int, int],
                 in_rows: tuple[int, int], in_cols: tuple[int, int]) -> None:
        self.rows, self.cols, self.in_rows, self.in_cols = rows, cols, in_rows, in_cols

    @property
    def out_size(self) -> tuple[int, int]:
        return self.rows[1] - self.rows[0] + 1, self.cols[1] - self.cols[0] + 1

    @property
    def in_area(self) -> int:
        return (self.in_rows[1] - self.in_rows[0] + 1) * (self.in_cols[1] - self.in_cols[0] + 1)

    def mask_inside(self, keep: np.ndarray) -> np.ndarray | None:
        """The part of `keep` [H,W] the window's input covers inside the map, or None when
        it keeps every position there (the crop is then a plain copy, no mask pass)."""
        h, w = keep.shape
        a, b = max(self.in_rows[0], 0), min(self.in_rows[1], h - 1)
        e, f = max(self.in_cols[0], 0), min(self.in_cols[1], w - 1)
        inner = keep[a:b + 1, e:f + 1]
        return None if inner.all() else inner


def _axis_window(lo: int, hi: int, n: int, k: int, s: int, p: int):
    """Outputs [o0, o1] of a conv axis (size n, kernel k, stride s, padding p) whose
    receptive field meets inputs [lo, hi], and the inputs [i0, i1] those outputs read;
    None when no output reads them."""
    n_out = (n + 2 * p - k) // s + 1
    o0 = max(0, -((k - 1 - lo - p) // s))        # ceil((lo + p - k + 1) / s)
    o1 = min(n_out - 1, (hi + p) // s)
    if o0 > o1:
        return None
    return (o0, o1), (o0 * s - p, o1 * s - p + k - 1)


def crop_window(keep, kernel: Sequence[int], stride: Sequence[int],
                padding: Sequence[int]) -> Window | None:
    """The :class:`Window` of a bool keep mask `keep` [H,W] (numpy) for a conv with these
    spatial kernel, stride and padding; None when nothing is kept or no output reads it."""
    rows = np.flatnonzero(keep.any(1))
    cols = np.flatnonzero(keep.any(0))
    if rows.size == 0:
        return None
    h, w = keep.shape
    ax_r = _axis_window(int(rows[0]), int(rows[-1]), h, kernel[0], stride[0], padding[0])
    ax_c = _axis_window(int(cols[0]), int(cols[-1]), w, kernel[1], stride[1], padding[1])
    if ax_r is None or ax_c is None:
        return None
    return Window(ax_r[0], ax_c[0], ax_r[1], ax_c[1])


def _crop(part: Tensor, mask: Tensor | None, window: Window) -> Tensor:
    """`part` [C,T,H,W] cut to the window's input rows/columns: zero beyond the map, the
    dropped features zeroed (`mask`: the keep mask inside the map as 0/1, None = all kept),
    in `part`'s memory format. Every element of the crop is written once (the zero border
    by the allocation, the rest by one copy or product)."""
    c, t, h, w = part.shape
    (i0, i1), (j0, j1) = window.in_rows, window.in_cols
    a, b = max(i0, 0), min(i1, h - 1)
    e, f = max(j0, 0), min(j1, w - 1)
    src = part.narrow(2, a, b - a + 1).narrow(3, e, f - e + 1)
    fmt = _format(part.unsqueeze(0))
    if (a, b, e, f) == (i0, i1, j0, j1):       # inside the map: no zero border
        return (src * mask if mask is not None
                else src.unsqueeze(0).contiguous(memory_format=fmt)[0])
    out = torch.empty(1, c, t, i1 - i0 + 1, j1 - j0 + 1, dtype=part.dtype, device=part.device,
                      memory_format=fmt)[0].zero_()
    dst = out.narrow(2, a - i0, b - a + 1).narrow(3, e - j0, f - e + 1)
    if mask is None:
        dst.copy_(src)
    else:
        torch.mul(src, mask, out=dst)
    return out


def _shares_memory(a: Tensor, b: Tensor) -> bool:
    """True when `a` is (a view into) `b`'s storage: writing into `a` would change `b`."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def is_channels_last(x: Tensor) -> bool:
    """True when 5-d `x` is laid out channels_last_3d (and not also plain contiguous)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=CHANNELS_LAST)


def _format(x: Tensor) -> torch.memory_format:
    return CHANNELS_LAST if is_channels_last(x) else torch.contiguous_format


def sum_in_memory_order(a: Tensor, dims: Sequence[int]) -> Tensor:
    """``a.sum(dims)``, reduced over a view whose dimensions follow `a`'s memory order.

    A channels_last site input [C,T,H,W] summed over (H,W) as laid out took 0.06-0.09 ms at
    batch 1 vs 0.01-0.02 ms when permuted to [T,H,W,C] first (C3D, 2 threads). The two
    profiles of such an input ((H,W) → [C,T], (C,T) → [H,W]) go through
    :func:`_profile_tc_last`, which reduces adjacent dimensions only."""
    if a.is_contiguous():
        return a.sum(dims)
    if a.dim() == 4 and tuple(dims) in ((2, 3), (0, 1)) and is_channels_last(a.unsqueeze(0)):
        return _profile_tc_last(a, tuple(dims))
    order = sorted(range(a.dim()), key=lambda d: -a.stride(d))
    if order == list(range(a.dim())):
        return a.sum(tuple(dims))
    kept = [d for d in order if d not in dims]
    out = a.permute(order).sum(tuple(order.index(d) for d in dims))
    return out.permute([kept.index(d) for d in sorted(kept)])


def _profile_tc_last(a: Tensor, dims: tuple[int, int]) -> Tensor:
    """Profile of a [C,T,H,W] tensor laid out [T,H,W,C] (contiguous): over (H,W) → [C,T]
    or over (C,T) → [H,W], each as sums over adjacent dimensions of that layout. Measured
    at batch 1 (one thread, C3D/R3D-18 site inputs, 2026-12-07): [C,T] 1.5–2.5× and [H,W]
    1.6–3× faster than one reduction over the two non-adjacent dimensions; for [H,W] few
    channels (C < 32) sum the frames first, more channels sum the channels first."""
    c, t, h, w = a.shape
    rows = a.permute(1, 2, 3, 0).reshape(t, h * w, c)       # a view
    if dims == (2, 3):
        return rows.sum(1).t()
    if c < 32:
        return rows.reshape(t, h * w * c).sum(0).view(h * w, c).sum(1).view(h, w)
    return rows.sum(2).sum(0).view(h, w)


def _round_up(s: np.ndarray, keep: np.ndarray, multiple: int) -> np.ndarray:
    """numpy twin of :func:`dance.aap.prune.round_up_channels` for one sample."""
    n = int(keep.sum())
    k = min(len(s), -(-n // multiple) * multiple) if multiple > 1 else n
    if k > n:
        keep = keep.copy()
        keep[np.argsort(-s, kind="stable")[:k]] = True
    return keep


def _keep(s: np.ndarray, tau: float) -> np.ndarray:
    """numpy twin of :func:`dance.aap.prune.keep_from_sums` for one sample."""
    keep = s * len(s) >= tau * s.sum()
    keep[s.argmax()] = True
    return keep


def masks_from_decision(shape: Sequence[int], frames, channels, features,
                        device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """Bool masks ([T], [C], [H,W]) on `device` of a :class:`PrunedConv` decision for
    input `shape` (…, C, T, H, W)."""
    c, t, h, w = (int(s) for s in shape[-4:])
    fm = torch.ones(t, dtype=torch.bool, device=device)
    if frames is not None:
        fm = torch.zeros(t, dtype=torch.bool, device=device)
        fm[list(frames)] = True
    cm = torch.ones(c, dtype=torch.bool, device=device)
    if channels is not None:
        cm = torch.zeros(c, dtype=torch.bool, device=device)
        cm[channels.to(device)] = True
    sm = (torch.ones(h, w, dtype=torch.bool, device=device) if features is None
          else features.bool().to(device))
    return fm, cm, sm
