"""3D CNN backbones with pruning sites (see :mod:`dance.models.sites`)."""

from dance.models.c3d import C3D
from dance.models.r3d import R3D18
from dance.models.registry import MODELS, build_model
from dance.models.sites import Site

__all__ = ["C3D", "MODELS", "R3D18", "Site", "build_model"]
