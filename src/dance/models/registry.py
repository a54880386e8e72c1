"""Model registry: one name per backbone, one builder signature for all of them."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from dance.errors import ConfigError
from dance.models.c3d import C3D
from dance.models.r3d import R3D18


def _c3d(num_classes: int, width: float, dropout: float) -> nn.Module:
    return C3D(num_classes=num_classes, width=width, dropout=dropout)


def _r3d18(num_classes: int, width: float, dropout: float) -> nn.Module:
    return R3D18(num_classes=num_classes, width=width, dropout=dropout)


# R(2+1)D-18 is not offered: its factorised (1,3,3)+(3,1,1) convs leave the site/conv pairing
# and the pruned-MAC accounting of the temporal half ambiguous (see docs/measurement.md).
MODELS: dict[str, Callable[[int, float, float], nn.Module]] = {
    "c3d": _c3d,
    "r3d18": _r3d18,
}


def build_model(name: str, num_classes: int, width: float = 1.0, frames: int = 16,
                size: int = 112, dropout: float = 0.0) -> nn.Module:
    """Build backbone `name` for clips of `frames`×`size`×`size`.

    Both networks accept any clip size (adaptive heads); `frames`/`size` are validated and
    stored as ``model.clip_shape = (3, frames, size, size)`` so that measurement code
    profiles the shape the model was built for.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; allowed: {', '.join(sorted(MODELS))}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not width > 0:
        raise ConfigError(f"model.width must be > 0, got {width!r}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {dropout!r}")
    if frames < 1 or size < 8:
        raise ConfigError(f"clip must have frames >= 1 and size >= 8, got {frames}×{size}×{size}")
    model = MODELS[name](num_classes, float(width), float(dropout))
    model.name = name
    model.clip_shape = (3, int(frames), int(size), int(size))
    return model
