"""FBS-style dynamic channel gating (Gao et al., ICLR 2019, "Dynamic Channel Pruning:
Feature Boosting and Suppression"), re-implemented for the 3D backbones (our reconstruction).

Every prunable conv of the backbone (``model.prunable_convs()``) and the BatchNorm that
follows it become one :class:`GatedConv3d`. Per clip and layer:

    s    = relu(W · pool(x) + b)           saliency [Cout]; pool = mean over (T,H,W) of the
                                           conv's input (post-ReLU, so FBS's mean |x|)
    keep = top-k(s) ∧ (s > 0),  k = ceil(d · Cout)      (d = the operating point's density)
    y    = (s ⊙ keep) · BN(conv(x))        kept channels boosted by their saliency, others 0

The gate multiplies the BatchNorm output (FBS's π·(norm(conv x) + β) with the BN affine kept),
so a zero gate gives an exact zero channel. With d = 1 every channel with s > 0 is kept and
y = s · BN(conv(x)). The predictor starts at W ≈ 0, b = 1 (s ≈ 1: the dense network, channels
picked by the tiny random W until training separates them). Loss: CE + l1 · (mean saliency,
averaged over layers and channels) — FBS's L1 on the saliencies, normalised by us.

Skipped work (counted exactly per clip, :func:`clip_costs`): the output channels a layer
drops are never computed, and when the next prunable conv reads that tensor through
channel-wise ops only (ReLU, pooling; :func:`channel_successors`), its dropped input channels
are not read either. A gated R3D-18 block's second conv feeds the residual sum, whose
channels are never all zero, so it saves only its own output channels. Non-prunable layers
(first conv, residual downsamples, linear layers) are counted dense.

Modes (shared :class:`GateState`): ``dense`` (the backbone unchanged), ``masked`` (the gated
network, batched: dense conv then the gate; training and evaluation reference) and
``pruned`` (batch 1, timed: kept input channels gathered, weights sliced to kept output ×
input channels, compact tensors handed on between a conv and its channel successor; equal
to ``masked`` to float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dance.aap.model import network_macs
from dance.errors import ConfigError
from dance.measure import memory
from dance.nn.conv import conv3d

MODES = ("dense", "masked", "pruned")


@dataclass
class GateState:
    """What the gated convs of one network share during a forward pass."""

    mode: str = "masked"
    record: bool = False
    keeps: dict[str, Tensor] = field(default_factory=dict)       # name -> [N, Cout] bool
    saliency_means: list[Tensor] = field(default_factory=list)  # per layer [N] (training)
    incoming: dict[str, Tensor] = field(default_factory=dict)   # pruned: channel index handoff

    def reset(self) -> None:
        self.keeps = {}
        self.saliency_means = []
        self.incoming = {}


def kept_count(density: float, channels: int) -> int:
    """k = ceil(d · C), at least 1."""
    return max(1, min(channels, math.ceil(density * channels - 1e-9)))


def topk_keep(s: Tensor, k: int) -> Tensor:
    """[N, C] bool: the k largest saliencies of each row that are > 0."""
    idx = torch.topk(s, k, dim=1).indices
    keep = torch.zeros_like(s, dtype=torch.bool).scatter(1, idx, True)
    return keep & (s > 0)


def conv_out_size(conv: nn.Conv3d, spatial: tuple[int, ...]) -> list[int]:
    """Output (T, H, W) of `conv` on an input of spatial shape `spatial`."""
    return [(i + 2 * p - d * (k - 1) - 1) // s + 1 for i, k, s, p, d in
            zip(spatial, conv.kernel_size, conv.stride, conv.padding, conv.dilation, strict=True)]


class GatedConv3d(nn.Module):
    """conv → BatchNorm → FBS gate, for one prunable layer (module docstring)."""

    def __init__(self, conv: nn.Conv3d, bn: nn.Module, name: str, density: float,
                 successor: str | None, state: GateState) -> None:
        super().__init__()
        if conv.groups != 1:
            raise ValueError(f"channel gating needs groups=1: {name}")
        self.conv = conv
        self.bn = bn
        self.name = name
        self.density = float(density)
        self.k = kept_count(density, conv.out_channels)
        self.successor = successor
        self.__dict__["state"] = state
        self.predictor = nn.Linear(conv.in_channels, conv.out_channels)
        nn.init.normal_(self.predictor.weight, 0.0, 1e-3)
        nn.init.ones_(self.predictor.bias)

    def saliency(self, x: Tensor) -> Tensor:
        """[N, Cout] = relu(W · mean_{T,H,W}(x) + b)."""
        return F.relu(self.predictor(x.mean((2, 3, 4))))

    def forward(self, x: Tensor) -> Tensor:
        st = self.state
        if st.mode == "dense":
            return self.bn(self.conv(x))
        if st.mode == "pruned":
            return self._pruned(x)
        if st.mode != "masked":
            raise ValueError(f"unknown gating mode {st.mode!r}; allowed: {', '.join(MODES)}")
        s = self.saliency(x)
        keep = topk_keep(s, self.k)
        st.saliency_means.append(s.mean(1))
        if st.record:
            st.keeps[self.name] = keep.detach().cpu()
        return self.bn(self.conv(x)) * (s * keep)[:, :, None, None, None]

    def _pruned(self, x: Tensor) -> Tensor:
        """Batch 1; BatchNorm must be folded into the conv (``self.bn`` is Identity)."""
        st = self.state
        if x.shape[0] != 1:
            raise ValueError(f"pruned mode runs one clip at a time, got batch {x.shape[0]}")
        if not isinstance(self.bn, nn.Identity):
            raise ValueError("pruned mode needs BatchNorm folded (dance.nn.fold.fold_batchnorm)")
        in_idx = st.incoming.pop(self.name, None)
        w_pred = self.predictor.weight
        weight = self.conv.weight
        if in_idx is not None:
            w_pred = w_pred.index_select(1, in_idx)
            weight = weight.index_select(1, in_idx)
        s = F.relu(w_pred @ x.mean((2, 3, 4))[0] + self.predictor.bias)
        top = torch.topk(s, self.k).indices
        out_idx = top[s.index_select(0, top) > 0].sort().values
        spatial = conv_out_size(self.conv, tuple(x.shape[2:]))
        if len(out_idx) == 0:
            y = x.new_zeros((1, 0, *spatial))
        elif x.shape[1] == 0:       # every input channel dropped: the conv gives its bias
            bias = self.conv.bias.index_select(0, out_idx) * s.index_select(0, out_idx)
            y = bias.view(1, -1, 1, 1, 1).expand(1, len(out_idx), *spatial).contiguous()
        else:
            w = weight.index_select(0, out_idx).contiguous()
            b = None if self.conv.bias is None else self.conv.bias.index_select(0, out_idx)
            y = conv3d(x, w, b, self.conv.stride, self.conv.padding, self.conv.dilation)
            y = y * s.index_select(0, out_idx).view(1, -1, 1, 1, 1)
        if st.record:
            keep = torch.zeros(self.conv.out_channels, dtype=torch.bool)
            keep[out_idx.cpu()] = True
            st.keeps[self.name] = keep[None]
        if self.successor is not None:
            st.incoming[self.successor] = out_idx
            return y
        full = y.new_zeros((1, self.conv.out_channels, *spatial))
        full[:, out_idx] = y
        return full

    def extra_repr(self) -> str:
        return f"name={self.name!r}, density={self.density}, k={self.k}, successor={self.successor!r}"


def channel_successors(model: nn.Module) -> dict[str, str | None]:
    """Prunable conv → the prunable conv that reads its output channels through channel-wise
    ops only (ReLU, pooling), or None. C3D: each conv feeds the next (conv5b feeds the
    classifier); R3D-18: a block's conv1 feeds its conv2, conv2 feeds the residual sum."""
    from dance.models.c3d import C3D
    from dance.models.r3d import R3D18

    names = [name for name, _, _ in model.prunable_convs()]
    if isinstance(model, C3D):
        return dict(zip(names, [*names[1:], None], strict=True))
    if isinstance(model, R3D18):
        return {n: (n[: -len("conv1")] + "conv2" if n.endswith(".conv1") else None)
                for n in names}
    raise ConfigError(f"channel gating knows the layer graph of c3d and r3d18, not "
                      f"{type(model).__name__}")


def _bn_of(model: nn.Module) -> dict[str, str]:
    from dance.nn.fold import conv_bn_pairs

    return dict(conv_bn_pairs(model))


class GatedNet(nn.Module):
    """A backbone whose prunable convs are :class:`GatedConv3d` (module docstring).

    ``state_dict`` is the whole network's (backbone + predictors): both are fine-tuned.
    ``eval()`` keeps the current evaluation mode (``masked`` unless set otherwise).
    """

    def __init__(self, backbone: nn.Module, density: float) -> None:
        super().__init__()
        if not 0 < density <= 1:
            raise ConfigError(f"gating density must be in (0, 1], got {density}")
        self.density = float(density)
        self.input_shape = self.clip_shape = tuple(backbone.clip_shape)
        self.macs = network_macs(backbone, self.input_shape)
        rows = memory.dense_profile(backbone, (1, *self.input_shape))
        prunable = {name for name, _, _ in backbone.prunable_convs()}
        self.fixed_accesses = {k: sum(r[k] for r in rows if r["layer"] not in prunable)
                               for k in memory.FIELDS}
        self.dense_accesses = {k: sum(r[k] for r in rows) for k in memory.FIELDS}
        self.dense_params = sum(p.numel() for p in backbone.parameters())
        bns = _bn_of(backbone)
        successors = channel_successors(backbone)
        self.state = GateState()
        self.names: list[str] = []
        self.gates: list[GatedConv3d] = []
        convs = {id(m): n for n, m in backbone.named_modules()}
        for _, _, conv in backbone.prunable_convs():
            name = convs[id(conv)]
            if name not in bns:
                raise ConfigError(f"prunable conv {name} is not followed by a BatchNorm")
            gate = GatedConv3d(conv, backbone.get_submodule(bns[name]), name, density,
                               successors[name], self.state)
            backbone.set_submodule(name, gate)
            backbone.set_submodule(bns[name], nn.Identity())
            self.names.append(name)
            self.gates.append(gate)
        self.backbone = backbone
        self.eval_mode = "masked"

    def forward(self, x: Tensor, mode: str | None = None) -> Tensor:
        st = self.state
        st.reset()
        st.mode = mode or ("masked" if self.training else self.eval_mode)
        return self.backbone(x)

    def mean_saliency(self) -> Tensor:
        """[N]: mean saliency over layers and channels of the last forward (the L1 term)."""
        return torch.stack(self.state.saliency_means, 1).mean(1)

    def predictors(self) -> list[nn.Parameter]:
        return [p for g in self.gates for p in g.predictor.parameters()]

    def predictor_params(self) -> int:
        return sum(p.numel() for p in self.predictors())

    def keeps(self, x: Tensor, mode: str = "masked") -> tuple[Tensor, dict[str, Tensor]]:
        """(logits, name → keep [N, Cout]) of one forward with the decisions recorded."""
        self.state.record = True
        try:
            logits = self(x, mode=mode)
            return logits, dict(self.state.keeps)
        finally:
            self.state.record = False


def gating_loss_fn(l1: float, label_smoothing: float = 0.0):
    """CE + l1 · mean saliency (FBS's L1 penalty, normalised per layer and channel)."""
    def loss_fn(model: GatedNet, x: Tensor, y: Tensor):
        logits = model(x)
        ce = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        sal = model.mean_saliency().mean()
        return ce + l1 * sal, logits, {"ce": float(ce.detach()), "saliency": float(sal.detach())}
    return loss_fn


# --- costs --------------------------------------------------------------------------------


def clip_costs(net: GatedNet, keeps: dict[str, Tensor]) -> dict[str, Any]:
    """Per clip: exact backbone MACs, memory accesses, predictor MACs and ops.

    Dense counts come from the ungated backbone (``net.macs``: exact MACs in the
    convention of :func:`dance.aap.model.network_macs`; ``net.fixed_accesses``: the
    non-prunable layers' accesses, dense). Layer l reads
    the input channels its predecessor kept (all, without a channel predecessor) and
    computes only its kept output channels: MACs = exact MACs at the kept input channels
    (:func:`dance.aap.evaluate.batch_effective_macs`) × kept_out / Cout; weights read =
    kept_out × kept_in × taps (+ kept_out biases); outputs written = kept_out channels.
    """
    from dance.aap.evaluate import batch_effective_macs

    macs = net.macs
    predecessor = {g.successor: g.name for g in net.gates if g.successor is not None}
    n = next(iter(keeps.values())).shape[0]
    total = np.full(n, macs["fixed_macs"], dtype=np.int64)
    acc = {k: np.full(n, net.fixed_accesses[k], dtype=np.int64) for k in memory.FIELDS}
    pred_macs = np.zeros(n, dtype=np.int64)
    pool_ops = np.zeros(n, dtype=np.int64)
    layer_macs = {}
    assert macs["names"] == net.names, (macs["names"], net.names)
    for gate, in_shape, out_shape in zip(net.gates, macs["in_shapes"], macs["out_shapes"],
                                         strict=True):
        conv, cout = gate.conv, gate.conv.out_channels
        cin, t, h, w = in_shape
        kin_mask = keeps[predecessor[gate.name]] if gate.name in predecessor else \
            torch.ones((n, cin), dtype=torch.bool)
        kout = keeps[gate.name].sum(1).to(torch.int64)
        full = batch_effective_macs(conv, in_shape, torch.ones((n, t), dtype=torch.bool),
                                    kin_mask, torch.ones((n, h, w), dtype=torch.bool))
        layer = (full // cout * kout).numpy()
        layer_macs[gate.name] = layer
        total += layer
        kin = kin_mask.sum(1).numpy()
        kout_np = kout.numpy()
        taps = int(np.prod(conv.kernel_size))
        acc["weights_read"] += kout_np * kin * taps + (kout_np if conv.bias is not None else 0)
        acc["inputs_read"] += kin * t * h * w
        acc["outputs_written"] += kout_np * int(np.prod(out_shape[1:]))
        pred_macs += kin * cout
        pool_ops += kin * t * h * w
    return {"macs": total, "layer_macs": layer_macs, "accesses": acc,
            "predictor_macs": pred_macs, "pool_ops": pool_ops}
