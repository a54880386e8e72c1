"""Learned dynamic frame skipping (AdaFrame / FrameExit-like), our reconstruction.

A light policy decides per clip which input frames the backbone runs on; the backbone then
runs on the kept frames only (a shorter clip: real removal of work).

Policy input — cheap per-frame features of the same kind DANCE's controller reads
(:mod:`dance.aap.controller`: statistics of the first conv's post-activation output): the
backbone's own first conv + BN + ReLU applied to the clip average-pooled spatially by
``policy_downsample`` (2: a quarter of the first layer's MACs), then the per-frame,
per-channel mean over (H, W) → [T, C1], standardised with fixed statistics of the training
clips (``calibrate``, as DANCE's controller) and detached (the policy does not train conv1).
Per frame t the MLP reads [z_t, mean_t z, one-hot(t)] → hidden → ReLU → 2 logits (skip,
keep). The output bias starts every frame at keep probability ``keep_init``.

Decisions: training draws Gumbel-softmax samples, hard straight-through (forward 0/1,
gradient of the soft sample); inference takes the arg-max (keep iff keep logit > skip
logit). At least one frame is always kept (the most probable one). The kept frames, in
order, form the clip the backbone runs on; clips of a batch are grouped by their kept count
and each group runs as one batch, so the result equals running the backbone on each clip's
gathered frames. In training the gathered frames are multiplied by their straight-through
keep value (1 in the forward pass), which carries the task loss's gradient to the policy;
skipped frames receive gradient only from the budget term (and are explored through the
Gumbel noise).

Loss: CE + budget on r = batch mean kept fraction: ``target`` = penalty · max(0, r − b) for
the point's keep ratio b; ``weight`` = β · r. BatchNorm statistics stay frozen during the
fine-tuning (groups of a few clips of one length are too small for batch statistics).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dance.errors import ConfigError
from dance.nn.fold import conv_bn_pairs


class FramePolicy(nn.Module):
    """Per-frame keep/skip logits [N, T, 2] from per-frame features [N, T, C1]."""

    def __init__(self, channels: int, frames: int, hidden: int = 32, keep_init: float = 0.9,
                 ) -> None:
        super().__init__()
        self.channels, self.frames = int(channels), int(frames)
        self.register_buffer("mu", torch.zeros(channels))
        self.register_buffer("sigma", torch.ones(channels))
        self.net = nn.Sequential(nn.Linear(2 * channels + frames, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2))
        nn.init.normal_(self.net[2].weight, 0.0, 0.01)
        logit = float(np.log(keep_init / (1.0 - keep_init)))
        with torch.no_grad():
            self.net[2].bias.copy_(torch.tensor([0.0, logit]))

    @torch.no_grad()
    def calibrate(self, features: Tensor) -> None:
        """Fix the standardisation from features [M, T, C1] of the training clips."""
        flat = features.reshape(-1, self.channels)
        self.mu.copy_(flat.mean(0))
        self.sigma.copy_(flat.std(0).clamp_min(1e-6))

    def forward(self, features: Tensor) -> Tensor:
        n, t, _ = features.shape
        z = (features - self.mu) / self.sigma
        ctx = z.mean(1, keepdim=True).expand(n, t, self.channels)
        pos = torch.eye(self.frames, t, dtype=z.dtype, device=z.device).T.expand(n, t, -1)
        return self.net(torch.cat([z, ctx, pos], 2))

    def macs(self, frames: int | None = None) -> int:
        """Multiply-adds of one clip (the MLP once per frame)."""
        per = sum(m.in_features * m.out_features for m in self.net if isinstance(m, nn.Linear))
        return per * int(frames or self.frames)


def ensure_one(keep: Tensor, logits: Tensor) -> Tensor:
    """`keep` [N, T] with the most probable frame of every all-skipped clip set to 1
    (added with a straight-through value, so gradients still flow)."""
    empty = keep.detach().sum(1) == 0
    if not bool(empty.any()):
        return keep
    best = F.one_hot((logits[..., 1] - logits[..., 0]).argmax(1), keep.shape[1]).to(keep.dtype)
    return keep + best * empty[:, None].to(keep.dtype) * (1.0 - keep.detach())


def run_on_kept(backbone: nn.Module, x: Tensor, keep: Tensor) -> Tensor:
    """Backbone logits of every clip on its kept frames only (``keep`` [N, T], values 0/1).

    Clips are grouped by kept count; each group is one batch of shorter clips, the kept
    frames multiplied by their keep value (1 in the forward pass; a straight-through keep
    value carries a gradient)."""
    hard = keep.detach() > 0.5
    counts = hard.sum(1)
    out: Tensor | None = None
    for k in counts.unique().tolist():
        rows = (counts == k).nonzero().squeeze(1)
        frames = hard[rows].nonzero()[:, 1].view(len(rows), k)            # sorted per row
        idx = frames[:, None, :, None, None].expand(-1, x.shape[1], -1, *x.shape[3:])
        clips = torch.gather(x[rows], 2, idx)
        scale = torch.gather(keep[rows], 1, frames)[:, None, :, None, None]
        logits = backbone(clips * scale)
        if out is None:
            out = logits.new_zeros((x.shape[0], logits.shape[1]))
        out = out.index_copy(0, rows, logits)
    return out


class FrameSkipNet(nn.Module):
    """Backbone + frame policy (module docstring); ``state_dict`` holds both."""

    def __init__(self, backbone: nn.Module, hidden: int = 32, keep_init: float = 0.9,
                 downsample: int = 2, temperature: float = 1.0) -> None:
        super().__init__()
        if downsample < 1:
            raise ConfigError(f"frame-skip policy_downsample must be >= 1, got {downsample}")
        self.backbone = backbone
        self.input_shape = self.clip_shape = tuple(backbone.clip_shape)
        names = {id(m): n for n, m in backbone.named_modules()}
        self.first_conv_name = names[id(backbone.first_conv)]
        bns = dict(conv_bn_pairs(backbone))
        self.first_bn_name = bns.get(self.first_conv_name)
        self.downsample = int(downsample)
        self.temperature = float(temperature)
        c1 = backbone.first_conv.out_channels
        self.policy = FramePolicy(c1, self.input_shape[1], hidden, keep_init)
        self.last_keep: Tensor | None = None

    def train(self, mode: bool = True) -> FrameSkipNet:
        super().train(mode)
        for m in self.backbone.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    @torch.no_grad()
    def frame_features(self, x: Tensor) -> Tensor:
        """[N, T, C1]: per-frame channel means of the first layer on the downsampled clip."""
        if self.downsample > 1:
            x = F.avg_pool3d(x, (1, self.downsample, self.downsample))
        a = self.backbone.get_submodule(self.first_conv_name)(x)
        if self.first_bn_name is not None:
            a = self.backbone.get_submodule(self.first_bn_name)(a)
        a = self.backbone.first_act(a)
        return a.mean((3, 4)).transpose(1, 2)

    def decide(self, x: Tensor) -> Tensor:
        """[N, T] keep values: straight-through Gumbel samples in training, hard arg-max
        (float 0/1) in evaluation; at least one frame per clip."""
        logits = self.policy(self.frame_features(x))
        if self.training:
            keep = F.gumbel_softmax(logits, tau=self.temperature, hard=True, dim=-1)[..., 1]
        else:
            keep = (logits[..., 1] > logits[..., 0]).to(logits.dtype)
        return ensure_one(keep, logits)

    def forward(self, x: Tensor) -> Tensor:
        keep = self.decide(x)
        self.last_keep = keep
        return run_on_kept(self.backbone, x, keep)

    def overhead(self) -> dict[str, int]:
        """Per clip: the policy's MACs (its first-layer pass on the downsampled clip, counted
        exactly, + the MLP) and element operations (the average pool and per-frame means)."""
        from dance.measure.macs import effective_conv_macs

        _, t, h, w = self.input_shape
        hd, wd = h // self.downsample, w // self.downsample
        conv = self.backbone.get_submodule(self.first_conv_name)
        first = effective_conv_macs(conv, (conv.in_channels, t, hd, wd))
        c1 = conv.out_channels
        from dance.sota.gating import conv_out_size

        out = conv_out_size(conv, (t, hd, wd))
        pool_ops = (3 * t * h * w if self.downsample > 1 else 0) + c1 * int(np.prod(out))
        return {"first_layer_macs": int(first), "mlp_macs": self.policy.macs(t),
                "macs": int(first) + self.policy.macs(t), "ops": int(pool_ops)}


def frame_skip_loss_fn(budget: str, point: float, penalty: float,
                       label_smoothing: float = 0.0):
    """CE + budget term on the batch mean kept fraction (module docstring)."""
    if budget not in ("target", "weight"):
        raise ConfigError(f"sota.frame_skip.budget must be target or weight, got {budget!r}")

    def loss_fn(model: FrameSkipNet, x: Tensor, y: Tensor):
        logits = model(x)
        ce = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        r = model.last_keep.mean()
        term = penalty * F.relu(r - point) if budget == "target" else point * r
        return ce + term, logits, {"ce": float(ce.detach()), "kept_fraction": float(r.detach()),
                                   "budget": float(term.detach())}
    return loss_fn


def length_costs(backbone: nn.Module, clip_shape: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    """Per kept length k = 1..T: exact MACs (:func:`dance.aap.model.network_macs`) and
    ideal-reuse accesses (:func:`dance.measure.memory.dense_summary`) of the backbone on a
    k-frame clip."""
    from dance.aap.model import network_macs
    from dance.measure import memory

    c, t, h, w = clip_shape
    out = {}
    for k in range(1, t + 1):
        acc = memory.dense_summary(backbone, (1, c, k, h, w))
        out[k] = {"macs": int(network_macs(backbone, (c, k, h, w))["total"]),
                  **{f: int(acc[f]) for f in memory.FIELDS}}
    return out
