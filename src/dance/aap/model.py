"""A backbone with AAP attached, without touching the backbone's code.

Every prunable conv (``model.prunable_convs()``) is swapped in place for an
:class:`AAPConv3d` that wraps it; all wrappers share one :class:`AAPState`. A forward hook on
``model.first_act`` (the first conv's post-activation) runs the controller and stores the
per-sample thresholds in the state; each wrapper then applies the pruning function to the
tensor its conv reads, according to the state's mode:

* ``off``    — the dense conv (the unpruned teacher; no controller call is needed);
* ``soft``   — training: sigmoid gates (:func:`dance.aap.prune.soft_gates`), then the dense
  conv; the expected kept share of every layer is collected for the budget loss;
* ``masked`` — hard 0/1 masks multiplied in, then the dense conv: the reference, and the
  batched evaluation path;
* ``pruned`` — batch 1, the timed path (:class:`dance.aap.execute.PrunedConv`): dropped
  frames and channels are gathered out and the weights sliced; equal to ``masked`` to float
  tolerance.

:class:`AAPNet` bundles backbone + controller + state as one module (``model(x) → logits``)
so that :func:`dance.train.loop.fit` can train it: the backbone is frozen (no gradients,
always in eval mode), the state_dict holds only the controller, ``train()`` selects ``soft``
and ``eval()`` the evaluation mode (``masked`` by default).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from dance.aap.controller import Controller
from dance.aap.execute import PrunedConv, masks_from_decision
from dance.aap.prune import apply_masks, hard_masks, soft_gates
from dance.measure.macs import exact_layer_macs
from dance.nn.probe import example_input, first_calls, probe_calls

MODES = ("off", "soft", "masked", "pruned")


@dataclass
class AAPState:
    """What the wrappers of one network share during a forward pass."""

    names: list[str]
    mode: str = "off"
    temperature: float = 0.1
    tau: Tensor | None = None               # [N, L, 3] thresholds of the current batch
    tau_rows: list | None = None            # tau[0] as python floats (pruned mode)
    fixed_tau: Tensor | None = None         # [L, 3] or [N, L, 3]: bypass the controller
    forced: dict[str, tuple[Tensor, Tensor, Tensor]] = field(default_factory=dict)
    record: bool = False
    records: dict[str, tuple[Tensor, Tensor, Tensor]] = field(default_factory=dict)
    kept_share: dict[str, Tensor] = field(default_factory=dict)   # soft: [N] per layer
    kept_dims: dict[str, Tensor] = field(default_factory=dict)    # soft: [N, 3] per layer
    nonneg: bool = False                    # every site input is >= 0 (post-ReLU)
    channel_multiple: int = 1               # kept channels rounded up to a multiple
    frame_exec: str = "auto"                # pruned path: compact | taps | auto
    active: list[tuple[bool, bool, bool]] = field(default_factory=list)  # per layer, dims

    def reset(self) -> None:
        self.tau = self.tau_rows = None
        self.records = {}
        self.kept_share = {}
        self.kept_dims = {}


class AAPConv3d(nn.Module):
    """A prunable conv with the pruning function in front of it (module docstring)."""

    def __init__(self, conv: nn.Conv3d, state: AAPState, index: int, name: str) -> None:
        super().__init__()
        self.conv = conv
        self.index = index
        self.name = name
        self.__dict__["state"] = state      # shared, not a submodule
        self.plan: PrunedConv | None = None

    def forward(self, x: Tensor) -> Tensor:
        st = self.state
        mode = st.mode
        if mode == "off":
            return self.conv(x)
        forced = st.forced.get(self.name)
        if mode == "soft":
            tau = st.tau[:, self.index]
            xs, (g_fr, g_ch, g_fe) = soft_gates(x, tau, st.temperature, st.active[self.index],
                                                st.nonneg)
            shares = torch.stack([g_fr.mean(1), g_ch.mean(1), g_fe.mean((1, 2))], 1)
            st.kept_dims[self.name] = shares                              # [N, 3]
            st.kept_share[self.name] = shares.prod(1)
            return self.conv(xs)
        if mode == "masked":
            if forced is None and not any(st.active[self.index]) and not st.record:
                return self.conv(x)
            if forced is not None:
                masks = forced if forced[0].dim() == 2 else tuple(m[None] for m in forced)
            else:
                masks = hard_masks(x, st.tau[:, self.index], st.channel_multiple,
                                   st.active[self.index])
            if st.record:
                st.records[self.name] = tuple(m.detach().cpu() for m in masks)
            return self.conv(apply_masks(x, *masks))
        if mode == "pruned":
            if forced is None and not any(st.active[self.index]):
                return self.conv(x)              # a layer the controller never prunes
            if x.shape[0] != 1:
                raise ValueError(f"pruned mode runs one clip at a time, got batch {x.shape[0]}")
            if self.plan is None:
                self.plan = self.make_plan()
            if forced is not None:
                out, decision = self.plan(x, decision=_decision_from_masks(forced, x.dtype))
            else:
                out, decision = self.plan(x, st.tau_rows[self.index])
            if st.record:
                st.records[self.name] = tuple(m[None] for m in
                                              masks_from_decision(x.shape, *decision,
                                                                  device=x.device))
            return out
        raise ValueError(f"unknown AAP mode {mode!r}; allowed: {', '.join(MODES)}")

    def make_plan(self) -> PrunedConv:
        st = self.state
        return PrunedConv(self.conv, nonneg=st.nonneg, frame_exec=st.frame_exec,
                          channel_multiple=st.channel_multiple)

    def extra_repr(self) -> str:
        return f"site={self.name!r}, index={self.index}"


def _decision_from_masks(masks: tuple[Tensor, Tensor, Tensor], dtype: torch.dtype):
    fr, ch, fe = (m[0] if m.dim() > d else m for m, d in zip(masks, (1, 1, 2), strict=True))
    frames = None if bool(fr.all()) else fr.nonzero().squeeze(1).tolist()
    channels = None if bool(ch.all()) else ch.nonzero().squeeze(1)
    features = None if bool(fe.all()) else fe.to(dtype)
    return frames, channels, features


def network_macs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """Dense MACs of one clip, per prunable layer and for the rest, in the exact convention
    of :func:`dance.measure.macs.effective_conv_macs` (taps that read padding are not MACs).

    Returns {names, in_shapes, out_shapes, layer_macs (list), fixed_macs, fixed_layers,
    total, nonneg}. `fixed_macs` covers every conv that is not prunable (the first conv,
    residual downsamples) and every linear layer, at dense cost. `nonneg` says whether every
    prunable conv read a non-negative tensor on a random clip (post-ReLU inputs, as in both
    backbones): the pruned path may then skip ``abs`` when it builds the profiles.
    """
    prunable = {id(conv): name for name, _, conv in model.prunable_convs()}
    calls = probe_calls(model, example_input(model, input_shape, random=True),
                        lambda _, m: isinstance(m, (nn.Conv3d, nn.Linear)))
    first = first_calls(calls)
    minima = [float(c.input.min()) for c in first if id(c.module) in prunable]
    names, ins, outs, layer = [], [], [], []
    fixed, fixed_layers = 0, {}
    for c in first:
        i, o = tuple(c.input.shape[1:]), tuple(c.output.shape[1:])
        macs = exact_layer_macs(c.module, i)
        if id(c.module) in prunable:
            names.append(prunable[id(c.module)])
            ins.append(i)
            outs.append(o)
            layer.append(int(macs))
        else:
            fixed += int(macs)
            fixed_layers[c.name] = int(macs)
    return {"names": names, "in_shapes": ins, "out_shapes": outs, "layer_macs": layer,
            "fixed_macs": fixed, "fixed_layers": fixed_layers, "total": fixed + sum(layer),
            "nonneg": bool(minima) and min(minima) >= 0.0}


class AAPNet(nn.Module):
    """Frozen backbone + controller + shared state (module docstring)."""

    def __init__(self, backbone: nn.Module, controller: Controller | None,
                 input_shape: tuple[int, ...] | None = None, temperature: float = 0.1,
                 eval_mode: str = "masked", channel_multiple: int = 1,
                 frame_exec: str = "auto") -> None:
        super().__init__()
        input_shape = tuple(input_shape or backbone.clip_shape)
        self.macs = network_macs(backbone, input_shape)
        self.input_shape = input_shape
        pairs = backbone.prunable_convs()
        self.names = [name for name, _, _ in pairs]
        self.state = AAPState(names=self.names, temperature=temperature,
                              nonneg=self.macs["nonneg"], channel_multiple=channel_multiple,
                              frame_exec=frame_exec)
        self.backbone = backbone
        self.controller = controller
        for p in backbone.parameters():
            p.requires_grad_(False)
        self.wrappers: list[AAPConv3d] = []
        for i, (name, _, conv) in enumerate(pairs):
            wrapper = conv if isinstance(conv, AAPConv3d) else AAPConv3d(conv, self.state, i, name)
            backbone.set_submodule(name, wrapper)
            self.wrappers.append(wrapper)
        self.__dict__["_hook"] = backbone.first_act.register_forward_hook(self._thresholds)
        self.eval_mode = eval_mode
        self.refresh_active()
        self.anneal: tuple[float, float, int] | None = None   # (start, end, total steps)
        self.register_buffer("layer_macs", torch.tensor(self.macs["layer_macs"],
                                                        dtype=torch.float64), persistent=False)
        self.eval()

    def refresh_active(self) -> None:
        """Which (layer, dimension) decisions run: the controller's `mask` (all without one).
        Call again after changing the mask."""
        if self.controller is not None:
            self.state.active = [tuple(bool(v) for v in row) for row in self.controller.mask > 0]
        else:
            self.state.active = [(True, True, True)] * len(self.names)

    # --- controller hook ---------------------------------------------------------------
    def _thresholds(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        st = self.state
        if st.mode == "off":
            return
        if st.fixed_tau is not None:
            tau = st.fixed_tau.to(output.dtype)
            tau = tau.expand(output.shape[0], *tau.shape[-2:]) if tau.dim() == 2 else tau
        else:
            tau = self.controller(output)
        st.tau = tau
        if st.mode == "pruned":
            st.tau_rows = tau[0].tolist()

    # --- module behaviour ----------------------------------------------------------------
    def train(self, mode: bool = True) -> AAPNet:
        self.training = mode
        if self.controller is not None:
            self.controller.train(mode)
        self.backbone.eval()       # frozen: BatchNorm statistics and dropout stay off
        return self

    def state_dict(self, *args, **kwargs):  # only the controller is trained and saved
        return self.controller.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.controller.load_state_dict(state_dict, strict=strict, assign=assign)

    def forward(self, x: Tensor, mode: str | None = None) -> Tensor:
        st = self.state
        st.reset()
        st.mode = mode or ("soft" if self.training else self.eval_mode)
        if st.mode == "soft" and self.anneal is not None and self.controller is not None:
            t0, t1, total = self.anneal
            step = int(self.controller.step)
            st.temperature = t0 * (t1 / t0) ** min(1.0, step / max(1, total - 1))
            self.controller.step += 1
        return self.backbone(x)

    def dense(self, x: Tensor) -> Tensor:
        """The unpruned backbone's logits (the teacher)."""
        return self.forward(x, mode="off")

    def expected_macs_ratio(self) -> Tensor:
        """[N] expected whole-network MACs / dense MACs of the last soft forward."""
        shares = torch.stack([self.state.kept_share[n] for n in self.names], 1)   # [N, L]
        kept = (shares.double() * self.layer_macs).sum(1)
        total = float(self.macs["total"])
        return ((kept + self.macs["fixed_macs"]) / total).to(shares.dtype)

    def expected_latency_ratio(self, latency: nn.Module) -> Tensor:
        """[N] predicted whole-network latency / dense latency of the last soft forward,
        from the per-layer kept shares and a :class:`~dance.aap.latency_table.LatencyModel`
        of this network."""
        shares = torch.stack([self.state.kept_dims[n] for n in self.names], 1)   # [N, L, 3]
        pruned = torch.tensor([any(a) for a in self.state.active], device=shares.device)
        return latency.ratio(shares, pruned).to(shares.dtype)

    def dense_copy(self) -> nn.Module:
        """A deep copy of the backbone as it was: wrappers replaced by their convs, the
        controller hook removed, parameters trainable again (e.g. for fvcore's tracer)."""
        fresh = copy.deepcopy(self.backbone)
        fresh.first_act._forward_hooks.pop(self._hook.id, None)
        for wrapper in self.wrappers:
            fresh.set_submodule(wrapper.name, copy.deepcopy(wrapper.conv))
        for p in fresh.parameters():
            p.requires_grad_(True)
        return fresh

    def prepare_pruned(self) -> None:
        """Build the pruned-execution plans now (weights snapshotted; rebuild after edits)."""
        for w in self.wrappers:
            w.plan = w.make_plan()
