"""Registry of the network variants the host bench times side by side.

A variant is a name and a builder ``builder(cfg, model_name, stage, model) -> fn`` where
`model` is the bench's own copy of the trained network of `stage` (eval mode, contiguous
weights; the builder may change it) and ``fn(x)`` maps one clip (1, 3, T, H, W) to logits.
The bench builds each requested variant once, under the configured conv-backend policy,
and times them interleaved (:func:`dance.measure.latency.time_variants`); ``dense`` is the
reference every speed-up is relative to.

Memory format: when ``bench.channels_last`` is true the bench hands clips over in
channels_last_3d and builders must use that format for the network too
(:func:`prepare_memory_format`), so every variant runs in the same format.

Registered here: ``dense`` (convs through :func:`dance.nn.conv3d`, i.e. the policy),
``dense-native`` (plain ``nn.Conv3d`` — PyTorch's own kernel choice, Slow3d at batch 1 for
small layers), ``dense-channels-last`` (``dense`` in channels_last_3d, input converted
inside the timed call) and ``dense-floor`` (``dense`` with every prunable conv skipped: the
time no pruning of those convs can remove, :class:`SkippedConv`). Later stages register one
name per operating point, e.g.
``register_variant("dance@0.5", builder)``; a whole family of names (``dance@K``) is
registered with :func:`register_family` (:mod:`dance.aap.bench`, :mod:`dance.sota.bench`).
Those modules sit above this one, so they are imported by the composition root that runs a
bench (:func:`dance.cli.bench_families`), never from here: a lower layer does not import an
upper one. Every builder applies
:func:`prepare_network` (``bench.prepare``: BatchNorm folded and padding-only kernel taps
dropped, both exact), so all variants run the same rewritten network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from dance.errors import ConfigError
from dance.nn.conv import use_fast_convs, use_native_convs

VariantFn = Callable[[Tensor], Any]
Builder = Callable[[dict, str, str, nn.Module], VariantFn]

_REGISTRY: dict[str, Builder] = {}
REFERENCE = "dense"


def register_variant(name: str, builder: Builder, replace: bool = False) -> Builder:
    """Add `builder` under `name` (a name may be registered once unless `replace`)."""
    if not name or "," in name:
        raise ValueError(f"variant name {name!r} must be non-empty and contain no comma")
    if name in _REGISTRY and not replace:
        raise ValueError(f"variant {name!r} is already registered")
    _REGISTRY[name] = builder
    return builder


def variant_names() -> list[str]:
    """Registered names, in registration order."""
    return list(_REGISTRY)


FamilyBuilder = Callable[[dict, str, str, nn.Module, str], VariantFn]
_FAMILIES: dict[str, FamilyBuilder] = {}


def register_family(prefix: str, builder: FamilyBuilder) -> FamilyBuilder:
    """Names starting with `prefix` (e.g. ``dance@`` for ``dance@0``, ``dance@1``, …) are
    built by ``builder(cfg, model_name, stage, model, name)``; exact names win."""
    _FAMILIES[prefix] = builder
    return builder


def build_variant(name: str, cfg: dict, model_name: str, stage: str, model: nn.Module,
                  ) -> VariantFn:
    """The timed callable of variant `name`; unknown names raise ConfigError listing all."""
    if name in _REGISTRY:
        return _REGISTRY[name](cfg, model_name, stage, model)
    for prefix, builder in _FAMILIES.items():
        if name.startswith(prefix):
            return builder(cfg, model_name, stage, model, name)
    families = [f"{p}…" for p in _FAMILIES]
    raise ConfigError(f"unknown bench variant {name!r}; registered: "
                      f"{', '.join(variant_names() + families)}")


def timing_options(cfg: dict) -> dict[str, bool]:
    """The bench keys that shape a timed network (``bench.prepare``,
    ``bench.channels_last``), as the keyword arguments of :func:`timed_network`."""
    return {"prepare": bool(cfg["bench"].get("prepare", False)),
            "channels_last": bool(cfg["bench"]["channels_last"])}


def prepare_network(model: nn.Module, prepare: bool) -> nn.Module:
    """The inference rewrite every variant gets when `prepare` (``bench.prepare``, on by
    default): BatchNorm folded, padding-only taps dropped
    (:func:`dance.nn.fold.prepare_for_timing`)."""
    if prepare:
        from dance.nn.fold import prepare_for_timing

        prepare_for_timing(model)
    return model


def prepare_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    """Put `model` in the bench's memory format (channels_last_3d if `channels_last`)."""
    if channels_last:
        return model.to(memory_format=torch.channels_last_3d)
    return model


def timed_network(model: nn.Module, prepare: bool, channels_last: bool,
                  convs: Callable[[nn.Module], nn.Module] = use_fast_convs) -> nn.Module:
    """The rewrite every timed network gets, in one place: eval mode, BatchNorm folded and
    padding-only taps dropped (:func:`prepare_network`), the policy convs (`convs`), the
    bench's memory format (:func:`prepare_memory_format`). `prepare` and `channels_last`:
    :func:`timing_options` of the config."""
    return prepare_memory_format(convs(prepare_network(model.eval(), prepare)),
                                 channels_last).eval()


def _dense(cfg: dict, model_name: str, stage: str, model: nn.Module) -> VariantFn:
    return timed_network(model, **timing_options(cfg))


def _dense_native(cfg: dict, model_name: str, stage: str, model: nn.Module) -> VariantFn:
    return timed_network(model, **timing_options(cfg), convs=use_native_convs)


def _dense_channels_last(cfg: dict, model_name: str, stage: str, model: nn.Module,
                         ) -> VariantFn:
    net = use_fast_convs(prepare_network(model, timing_options(cfg)["prepare"])).to(
        memory_format=torch.channels_last_3d).eval()

    def run(x: Tensor) -> Tensor:
        return net(x.contiguous(memory_format=torch.channels_last_3d))

    return run


class SkippedConv(nn.Module):
    """Stands in for a conv whose work pruning could remove entirely: returns a zero tensor
    of the conv's output shape and memory format (computed by the conv once per input shape
    and kept), so that everything around the conv — activations, pooling, the unprunable
    convs, the classifier — runs as in the dense network. Its time is the floor that no
    pruning of those convs goes below (Amdahl's law; docs/experiments.md, "why the default
    size stays far from the ideal")."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self._outputs: dict[tuple, Tensor] = {}

    def forward(self, x: Tensor) -> Tensor:
        key = (tuple(x.shape), x.dtype, x.device, x.is_contiguous())
        out = self._outputs.get(key)
        if out is None:
            out = self._outputs[key] = self.conv(x).detach().zero_()
        return out


def skip_prunable_convs(model: nn.Module) -> nn.Module:
    """Replace every conv of ``model.prunable_convs()`` by a :class:`SkippedConv`, in place."""
    for name, _, conv in model.prunable_convs():   # site name = the conv's module path
        model.set_submodule(name, SkippedConv(conv))
    return model


def _dense_floor(cfg: dict, model_name: str, stage: str, model: nn.Module) -> VariantFn:
    return skip_prunable_convs(_dense(cfg, model_name, stage, model))


register_variant("dense", _dense)
register_variant("dense-native", _dense_native)
register_variant("dense-channels-last", _dense_channels_last)
register_variant("dense-floor", _dense_floor)
