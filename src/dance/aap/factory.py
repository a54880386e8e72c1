"""The AAP domain's factory: variants, the controller of a backbone, and a trained
operating point checked against the config (its identity).

A variant names the backbone its controller prunes (the baseline for ``no_ava``, else the
AVA network) and the dimensions it may prune (:data:`DIMS`). :func:`build_net` puts a
controller in front of a backbone; :func:`load_controller` loads one operating point's
trained controller, refusing a checkpoint whose identity (:func:`aap_meta`) is not the
config's. Training is :mod:`dance.train.aap`, evaluation :mod:`dance.aap.evaluate`, the bench
:mod:`dance.aap.bench`: all of them build networks here.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from torch import nn

from dance import checkpoint
from dance.aap.controller import Controller
from dance.aap.model import AAPNet, network_macs
from dance.errors import ConfigError
from dance.identity import AAP_BACKBONE, aap_stage, stage_identity
from dance.models.trained import load_trained, model_meta
from dance.nn.probe import example_input, probe_calls
from dance.paths import Paths

if TYPE_CHECKING:
    from dance.aap.latency_table import LatencyModel

VARIANTS = tuple(AAP_BACKBONE)
DIMS = {"dance": (True, True, True), "no_ava": (True, True, True),
        "frames": (True, False, False), "channels": (False, True, False),
        "features": (False, False, True)}


def backbone_stage(variant: str) -> str:
    """The checkpoint a variant's controller prunes: the baseline for no_ava, else AVA."""
    check_variant(variant)
    return AAP_BACKBONE[variant]


def check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown AAP variant {variant!r}; allowed: {', '.join(VARIANTS)}")


def check_point(aap: dict, point: int) -> float:
    """The value of operating point `point` of the `aap` section (its ``points`` entry),
    checked against its budget kind."""
    points = aap["points"]
    if not 0 <= point < len(points):
        raise ConfigError(f"AAP operating point {point} does not exist: config key 'aap.points' "
                          f"has {len(points)} entries (0..{len(points) - 1})")
    value = float(points[point])
    if aap["budget"] != "weight" and value > 1.0:
        raise ConfigError(f"config key 'aap.points' entry {point} = {value}: with "
                          f"budget={aap['budget']} every point is a budget ratio of "
                          f"{aap['cost']} in (0, 1]")
    return value


def aap_meta(cfg: dict, model_name: str, variant: str, point: int, num_classes: int) -> dict:
    """Identity of one controller (:func:`dance.identity.stage_identity`, which covers its
    backbone's); a latency-trained one also records the measured table it trained against."""
    base = model_meta(cfg, model_name, backbone_stage(variant), num_classes)
    check_point(cfg["aap"], point)
    stage = aap_stage(variant, point)
    meta = {**base, "stage": stage, "backbone_stage": base["stage"], "variant": variant,
            "point": point, "fingerprint": stage_identity(cfg, model_name, stage)}
    if cfg["aap"]["cost"] == "latency":    # the table and its conditions (floor, overheads)
        table = Paths(cfg).training_latency_table(model_name)
        meta["latency_table"] = [hashlib.sha256(f.read_bytes()).hexdigest() if f.exists()
                                 else None for f in (table, table.with_suffix(".json"))]
    return meta


def controller_spec(aap: dict, backbone: nn.Module, variant: str, macs: dict,
                    latency: LatencyModel | None = None) -> dict:
    """Constructor arguments of the controller for `backbone` (saved with its weights), from
    the `aap` section; with ``aap.cost: latency``, `latency` is the model it trains against
    (:func:`dance.aap.latency_table.latency_model`)."""
    a1 = _first_activation_shape(backbone, macs)
    total = macs["total"]
    active = [m / total >= aap["min_layer_share"] for m in macs["layer_macs"]]
    if aap["cost"] == "latency":     # and only where deciding can pay on this host
        from dance.aap.latency_table import layers_that_pay

        pays = layers_that_pay(latency)
        active = [a and p for a, p in zip(active, pays, strict=True)]
    frames_ok = [shape[1] >= aap["min_frames"] for shape in macs["in_shapes"]]
    return {"channels": a1[0], "frames": a1[1], "layers": len(macs["names"]),
            "hidden": aap["hidden"], "tau_max": aap["tau_max"],
            "dims": list(DIMS[variant]), "tau_init": aap["tau_init"],
            "active_layers": active, "mask": [[f, True, True] for f in frames_ok],
            "stats_stride": aap["stats_stride"], "stats": aap["stats"]}


def _first_activation_shape(backbone: nn.Module, macs: dict) -> tuple[int, ...]:
    calls = probe_calls(backbone, example_input(backbone, backbone.clip_shape),
                        lambda _, m: m is backbone.first_act)
    return tuple(calls[0].output.shape[1:])


def build_net(cfg: dict, model_name: str, variant: str, num_classes: int,
              controller_state: dict | None = None, spec: dict | None = None,
              eval_mode: str = "masked", backbone: nn.Module | None = None) -> AAPNet:
    """Backbone of `variant` (loaded unless given) + controller (+ its saved weights)."""
    if backbone is None:
        backbone = load_trained(cfg, model_name, backbone_stage(variant), num_classes)
    macs = network_macs(backbone, backbone.clip_shape)
    if not spec:
        from dance.aap.latency_table import latency_model

        latency = latency_model(cfg["aap"]["cost"], Paths(cfg), backbone.name, macs["names"])
        spec = controller_spec(cfg["aap"], backbone, variant, macs, latency)
    controller = Controller(**spec)
    if controller_state is not None:
        controller.load_state_dict(controller_state)
    return AAPNet(backbone, controller, temperature=cfg["aap"]["temperature"],
                  eval_mode=eval_mode, channel_multiple=cfg["aap"]["channel_multiple"],
                  frame_exec=cfg["aap"]["frame_exec"])


def load_controller(cfg: dict, model_name: str, variant: str, point: int, num_classes: int,
                    eval_mode: str = "masked", backbone: nn.Module | None = None) -> AAPNet:
    """The trained network of one operating point, checked against the current config."""
    path = Paths(cfg).aap_checkpoint(model_name, variant, point)
    payload = checkpoint.load(path, expect=aap_meta(cfg, model_name, variant, point,
                                                    num_classes))
    return build_net(cfg, model_name, variant, num_classes, payload["model"],
                     payload["controller_spec"], eval_mode, backbone)
