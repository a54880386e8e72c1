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
inside the timed call). Later stages register one name per operating point, e.g.
``register_variant("dance@0.5", builder)``.
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


def build_variant(name: str, cfg: dict, model_name: str, stage: str, model: nn.Module,
                  ) -> VariantFn:
    """The timed callable of variant `name`; unknown names raise ConfigError listing all."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown bench variant {name!r}; registered: "
                          f"{', '.join(variant_names())}")
    return _REGISTRY[name](cfg, model_name, stage, model)


def prepare_memory_format(model: nn.Module, cfg: dict) -> nn.Module:
    """Put `model` in the bench's memory format (channels_last_3d if bench.channels_last)."""
    if cfg["bench"]["channels_last"]:
        return model.to(memory_format=torch.channels_last_3d)
    return model


def _dense(cfg: dict, model_name: str, stage: str, model: nn.Module) -> VariantFn:
    return prepare_memory_format(use_fast_convs(model), cfg).eval()


def _dense_native(cfg: dict, model_name: str, stage: str, model: nn.Module) -> VariantFn:
    return prepare_memory_format(use_native_convs(model), cfg).eval()


def _dense_channels_last(cfg: dict, model_name: str, stage: str, model: nn.Module,
                         ) -> VariantFn:
    net = use_fast_convs(model).to(memory_format=torch.channels_last_3d).eval()

    def run(x: Tensor) -> Tensor:
        return net(x.contiguous(memory_format=torch.channels_last_3d))

    return run


register_variant("dense", _dense)
register_variant("dense-native", _dense_native)
register_variant("dense-channels-last", _dense_channels_last)
