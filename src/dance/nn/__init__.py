"""Layers shared by every timed network (dense reference, pruned DANCE, baselines).

:mod:`dance.nn.conv` routes every timed 3D conv through one function, so that a dense
reference and a pruned variant are always computed by the same kernel family.
"""

from dance.nn.conv import (
    BACKENDS,
    FastConv3d,
    conv3d,
    conv_backend,
    conv_backend_audit,
    get_conv_backend,
    mkldnn_available,
    resolve_backend,
    set_conv_backend,
    use_fast_convs,
    use_native_convs,
)

__all__ = [
    "BACKENDS", "FastConv3d", "conv3d", "conv_backend", "conv_backend_audit",
    "get_conv_backend", "mkldnn_available", "resolve_backend", "set_conv_backend",
    "use_fast_convs", "use_native_convs",
]
