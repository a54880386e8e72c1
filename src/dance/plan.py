"""Every job the workflow runs, planned from the config alone.

The one answer to "which points are there": the Snakefile loops over these lists to make
its jobs, and the package's steps ask the same functions which points they train, write,
time, summarise or export, so a step never waits for a file no rule makes, nor a rule for
a point no step writes. Torch-free (standard library, ``dance.paths``, ``dance.errors`` and
``dance.identity``): the workflow imports it while it plans.

- AAP controllers: variant → operating points (``aap.points`` for DANCE, every entry;
  ``aap.ablation_points`` that exist for each ``aap.ablations`` variant).
- Compared methods: the dense record, the two L1 levels, the selector's points (one per
  ``sota.selector.thresholds`` entry, then the fixed routings), and the dynamic baselines'
  records (one per ``sota.<method>.points`` entry).
- On-device export: ``devices.points`` (default every DANCE point), each one trained.
"""

from __future__ import annotations

from pathlib import Path

from dance.errors import ConfigError
from dance.identity import aap_stage
from dance.paths import Paths

# Dense stages the generic rules run on: evaluated (both), benchmarked (the baseline; the
# AVA network is timed by the AAP bench as its `dense`).
EVALUATED_STAGES = ("baseline", "ava")
BENCHED_STAGES = ("baseline",)

L1_LEVELS = ("mild", "aggressive")

# The selector's routings that need no threshold (dance.sota.selector.route), after the
# threshold points.
SELECTOR_FIXED_POINTS = ("always_aggressive", "always_mild", "oracle")

# Dynamic baselines: method (config section ``sota.<method>``, training stage
# ``<method>@K``) → the method name of its records.
DYNAMIC_RECORD = {"gating": "fbs", "frame_skip": "frame_skip"}
DYNAMIC_METHOD = {record: method for method, record in DYNAMIC_RECORD.items()}

# A device the host drives when this key of its config section is set.
DEVICE_CONNECTION = {"jetson_nano": "ssh", "snapdragon": "adb_serial"}


# --- AAP controllers ---------------------------------------------------------------------
def aap_points(cfg: dict) -> dict[str, list[int]]:
    """Variant → the operating points the workflow trains for it (an ablation point past
    the end of ``aap.points`` is left out)."""
    n = len(cfg["aap"]["points"])
    ablation = [k for k in cfg["aap"]["ablation_points"] if k < n]
    return {"dance": list(range(n)), **{v: ablation for v in cfg["aap"]["ablations"]}}


def aap_pairs(cfg: dict) -> list[tuple[str, int]]:
    """Every trained controller as (variant, point), DANCE first."""
    return [(v, k) for v, points in aap_points(cfg).items() for k in points]


# --- compared methods --------------------------------------------------------------------
def l1_stage(level: str) -> str:
    """Training stage (and checkpoint name) of an L1 pruning level."""
    return f"l1_{level}"


def selector_point_name(threshold: float) -> str:
    """A threshold point's name, e.g. ``t0.7``."""
    return f"t{threshold:g}"


def selector_threshold_points(cfg: dict) -> list[str]:
    """The selector's threshold points (the ones a bench can time: they need no label)."""
    return [selector_point_name(t) for t in cfg["sota"]["selector"]["thresholds"]]


def selector_points(cfg: dict) -> list[str]:
    """Every point the selector's evaluation writes a record of."""
    return [*selector_threshold_points(cfg), *SELECTOR_FIXED_POINTS]


def dynamic_stage(method: str, point: int | str) -> str:
    """Training stage (and checkpoint name) of a dynamic baseline's operating point."""
    return f"{method}@{point}"


def dynamic_points(cfg: dict) -> list[tuple[str, str, int]]:
    """Every dynamic baseline's operating point as (record name, method, point index)."""
    return [(record, method, k) for method, record in DYNAMIC_RECORD.items()
            for k in range(len(cfg["sota"][method]["points"]))]


def sota_records(cfg: dict, model: str) -> list[Path]:
    """The dense, L1 and selector records of `model` (every compared method but the
    dynamic baselines)."""
    paths = Paths(cfg)
    return [paths.sota_record(model, "dense", "dense"),
            *(paths.sota_record(model, "l1", level) for level in L1_LEVELS),
            *selector_records(cfg, model)]


def selector_records(cfg: dict, model: str) -> list[Path]:
    """The selector evaluation's records of `model`, one per point."""
    return [Paths(cfg).sota_record(model, "selector", p) for p in selector_points(cfg)]


def dynamic_records(cfg: dict) -> list[Path]:
    """Every model's dynamic-baseline records."""
    paths = Paths(cfg)
    return [paths.sota_dynamic_record(m, record, k) for m in cfg["models"]
            for record, _, k in dynamic_points(cfg)]


def comparison_records(cfg: dict) -> list[Path]:
    """Every compared method's record of every model: what the comparison reads."""
    return [p for m in cfg["models"] for p in sota_records(cfg, m)] + dynamic_records(cfg)


# --- every trained stage -----------------------------------------------------------------
def training_stages(cfg: dict) -> list[tuple[str, str]]:
    """Every (model, stage) the workflow trains: the stage names of ``dance.identity`` and
    of the checkpoints."""
    names = ["baseline", "ava", *(l1_stage(level) for level in L1_LEVELS), "selector",
             *(dynamic_stage(method, k) for _, method, k in dynamic_points(cfg)),
             *(aap_stage(v, k) for v, k in aap_pairs(cfg))]
    return [(model, name) for model in cfg["models"] for name in names]


# --- on-device export --------------------------------------------------------------------
def export_points(cfg: dict) -> list[int]:
    """The DANCE operating points exported to the devices (``devices.points``; default
    every trained one). A point the workflow does not train is refused: nothing would
    make its controller."""
    trained = aap_points(cfg)["dance"]
    wanted = cfg["devices"]["points"]
    if wanted is None:
        return trained
    missing = [k for k in wanted if k not in trained]
    if missing:
        raise ConfigError(f"config key 'devices.points' lists {missing}, which the workflow "
                          f"does not train (trained DANCE points: {trained})")
    return list(wanted)


def export_checkpoints(cfg: dict) -> list[Path]:
    """What the export reads: every model's AVA backbone and its exported controllers."""
    paths = Paths(cfg)
    return [paths.checkpoint(m, "ava") for m in cfg["models"]] + [
        paths.aap_checkpoint(m, "dance", k) for m in cfg["models"] for k in export_points(cfg)]


def device_driven(cfg: dict, device: str) -> bool:
    """True when the host drives `device` (its connection key is set); otherwise its logs
    are placed by hand, or it is not measured."""
    return bool(cfg["devices"][device][DEVICE_CONNECTION[device]])
