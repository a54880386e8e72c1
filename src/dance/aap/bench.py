"""Bench variants of the trained AAP operating points: ``dance@K`` and ``dance-<ablation>@K``.

``python -m dance bench --model M --stage ava --variants dense,dance@0,dance@1,...`` (or
``python -m dance bench-aap --model M``, which lists every trained point) times the dense
network and the pruned ones side by side in one interleaved run
(:func:`dance.measure.latency.time_variants`). A variant is the backbone of its controller
(AVA, or the baseline for ``no_ava``) rewritten like the dense reference
(:func:`dance.measure.variants.prepare_network`: BatchNorm folded, padding-only taps dropped),
its convs routed through :func:`dance.nn.conv3d`, and AAP in ``pruned`` mode: batch 1,
dropped frames and channels gathered out, weights sliced (:mod:`dance.aap.execute`).

Two probes of a point's decision overhead (issue 20.3) take a suffix:
``dance@K:tau0`` runs the point's network with every threshold forced to 0 (the controller
and every pruned conv's glue run, nothing is decided or dropped: it must run at dense
speed) and ``dance@K:decide`` with every active threshold forced to a tiny positive value
(every profile and keep rule runs and keeps all but all-zero entries). Their excess over
``dense``, per pruned conv, is what deciding costs.
"""

from __future__ import annotations

import re

from torch import Tensor, nn

from dance.aap.latency_table import DECIDE_TAU
from dance.errors import ConfigError
from dance.measure.variants import (
    VariantFn,
    prepare_memory_format,
    prepare_network,
    register_family,
    timing_options,
)
from dance.nn.conv import use_fast_convs

PREFIX = "dance"
_NAME = re.compile(r"^dance(?:-(?P<variant>[a-z_]+))?@(?P<point>\d+)(?::(?P<probe>[a-z0-9]+))?$")
# the factor every threshold is multiplied by (decide: as the latency table's decide entry)
PROBES = {"tau0": 0.0, "decide": DECIDE_TAU[0]}


def variant_name(variant: str, point: int) -> str:
    """Bench name of an operating point: ``dance@K`` or ``dance-<ablation>@K``."""
    return f"dance@{point}" if variant == "dance" else f"dance-{variant}@{point}"


def parse_name(name: str) -> tuple[str, int, str | None]:
    """(variant, point, probe | None) of a bench name; ConfigError when it is not one."""
    from dance.aap.factory import check_variant

    m = _NAME.match(name)
    if not m:
        raise ConfigError(f"bench variant {name!r} is not an AAP operating point "
                          f"(dance@K or dance-<variant>@K, optionally :{' or :'.join(PROBES)})")
    variant = m.group("variant") or "dance"
    check_variant(variant)
    probe = m.group("probe")
    if probe is not None and probe not in PROBES:
        raise ConfigError(f"bench variant {name!r}: probe {probe!r} unknown; allowed: "
                          f"{', '.join(PROBES)}")
    return variant, int(m.group("point")), probe


def build(cfg: dict, model_name: str, stage: str, model: nn.Module, name: str) -> VariantFn:
    """Timed callable of AAP point `name` (module docstring)."""
    from dance.aap.factory import backbone_stage, load_controller
    from dance.models.trained import load_trained

    variant, point, probe = parse_name(name)
    num_classes = model.classifier.out_features
    need = backbone_stage(variant)
    device = next(model.parameters()).device
    backbone = (model if need == stage
                else load_trained(cfg, model_name, need, num_classes).to(device))
    options = timing_options(cfg)
    backbone = use_fast_convs(prepare_network(backbone.eval(), options["prepare"]))
    net = load_controller(cfg, model_name, variant, point, num_classes, eval_mode="pruned",
                          backbone=backbone).to(device)     # the controller is built on the CPU
    if probe is not None:
        # the controller still runs; its thresholds are scaled, the active decisions kept
        net.controller.mask.mul_(PROBES[probe])
    net.prepare_pruned()
    net = prepare_memory_format(net, options["channels_last"]).eval()

    def run(x: Tensor) -> Tensor:
        return net(x)

    run.net = net  # for inspection (decisions, plans)
    return run


register_family(PREFIX, build)
