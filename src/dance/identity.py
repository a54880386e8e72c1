"""A trained stage's identity: the one hash that says whether its weights are still valid.

Snakemake re-runs a training rule when its params trigger changes, and a checkpoint is
refused on load or resume when its stored fingerprint differs: both are
:func:`stage_identity`, so the two cannot disagree. The identity of a stage is the hash of
the values that train it (listed positively in :data:`TRAINED_BY`, resolved the way its
training resolves them) and of its parent's identity, so a change to the baseline reaches
every stage built on it and nothing else does.

Stages: ``baseline``, ``ava``, ``l1_mild``, ``l1_aggressive``, ``selector`` (on
``l1_aggressive``), ``gating@K`` and ``frame_skip@K`` (the dynamic baselines' points), and
``aap-<variant>-<K>`` (a controller: on ``ava``, or on ``baseline`` for ``no_ava``).
Torch-free: the workflow imports it while planning.
"""

from __future__ import annotations

from collections.abc import Callable

from dance.config import fingerprint, lookup
from dance.errors import ConfigError

# The `train` keys that change a network's weights or what it is trained on
# (``eval_batch_size`` batches the statistics and features the controllers and the selector
# head are trained on); ``train.per_model.<model>`` entries replace them per model,
# ``progress`` draws bars.
TRAIN_KEYS = ("batch_size", "channels_last", "epochs", "eval_batch_size", "label_smoothing",
              "lr", "momentum", "optimizer", "warmup_epochs", "weight_decay")

# The `aap` keys that change a controller's weights or the decisions its checkpoint
# switches off (channel_multiple rounds the hard masks those are read from). Not listed,
# because they only choose what is evaluated or how the timed path runs: points (a
# controller reads its own entry), ablation_points, ablations, decision_clips,
# pruned_check_clips, frame_exec. The latency table's grid (`latency_table`) or the pinned
# table (`latency_table_file`) counts only for a latency-trained controller.
AAP_KEYS = ("batch_size", "budget", "channel_multiple", "cost", "epochs", "hidden",
            "kd_temperature",
            "kd_weight", "lr", "min_frames", "min_layer_share", "min_pruned_share",
            "optimizer", "penalty", "stats", "stats_stride", "tau_init", "tau_max", "temperature",
            "temperature_end", "train_clips", "train_split", "val_clips", "weight_decay")

# The selector head's training keys (its thresholds only route at evaluation).
SELECTOR_KEYS = ("batch_size", "epochs", "hidden", "lr", "monitor_share")

# The dynamic baselines' keys beside their point's own value (`points` lists them all).
DYNAMIC_KEYS = {
    "gating": ("l1", "lr", "predictor_lr_scale"),
    "frame_skip": ("budget", "hidden", "keep_init", "lr", "penalty", "policy_downsample",
                   "policy_lr_scale", "temperature"),
}

# AAP variants and the stage whose network each one prunes.
AAP_BACKBONE = {"dance": "ava", "no_ava": "baseline", "frames": "ava", "channels": "ava",
                "features": "ava"}


def train_section(cfg: dict, model_name: str | None = None) -> dict:
    """The `train` keys that change weights, with ``per_model[model_name]`` (keys not null)
    merged in."""
    train = {k: cfg["train"][k] for k in TRAIN_KEYS}
    if model_name is not None:
        override = cfg["train"].get("per_model", {}).get(model_name, {})
        train.update({k: v for k, v in override.items() if v is not None})
    return train


def finetune_settings(cfg: dict, lr_key: str | None = None) -> dict:
    """AVA's fine-tuning schedule as a compared method gets it: ``sota.epochs`` epochs when
    set (else AVA's), the rate of `lr_key` when set (else AVA's), AVA's warm-up."""
    lr = lookup(cfg, lr_key) if lr_key else None
    epochs = cfg["sota"].get("epochs")
    return {"epochs": cfg["ava"]["epochs"] if epochs is None else epochs,
            "lr": cfg["ava"]["lr"] if lr is None else lr,
            "lr_key": "ava.lr" if lr is None else lr_key,
            "warmup_epochs": cfg["ava"]["warmup_epochs"]}


def _entry(cfg: dict, key: str, point: int):
    """Entry `point` of the list at config key `key`, refused by name when it has none."""
    values = lookup(cfg, key)
    if not 0 <= point < len(values):
        raise ConfigError(f"operating point {point} does not exist: config key {key!r} has "
                          f"{len(values)} entries (0..{len(values) - 1})")
    return values[point]


def _pick(section: dict, keys: tuple[str, ...]) -> dict:
    return {k: section[k] for k in keys}


def _baseline(cfg: dict, model: str) -> dict:
    return {"seed": cfg["seed"], "dataset": cfg["dataset"], "model": cfg["model"],
            "train": train_section(cfg, model)}


def _l1(level: str) -> Callable[[dict, str], dict]:
    def trained_by(cfg: dict, model: str) -> dict:
        l1 = cfg["sota"]["l1"]
        return {"sparsity": l1[level], "round_to": l1["round_to"],
                "schedule": finetune_settings(cfg, "sota.l1.lr")}
    return trained_by


def _dynamic(family: str, point: int) -> Callable[[dict, str], dict]:
    def trained_by(cfg: dict, model: str) -> dict:
        section = cfg["sota"][family]
        return {**_pick(section, DYNAMIC_KEYS[family]),
                "point_value": _entry(cfg, f"sota.{family}.points", point),
                "schedule": finetune_settings(cfg, f"sota.{family}.lr")}
    return trained_by


def _aap(variant: str, point: int) -> Callable[[dict, str], dict]:
    def trained_by(cfg: dict, model: str) -> dict:
        aap = cfg["aap"]
        out = {**_pick(aap, AAP_KEYS), "point_value": _entry(cfg, "aap.points", point),
               "variant": variant}
        if aap["cost"] == "latency":      # the table's measured values: the rule's input
            pinned = aap["latency_table_file"]
            out["latency_table"] = {"file": pinned} if pinned else aap["latency_table"]
        return out
    return trained_by


def parent_and_training(stage: str) -> tuple[str | None, Callable[[dict, str], dict]]:
    """`stage`'s parent stage (None for the baseline) and the function giving the values
    that train it from its parent."""
    family, _, point = stage.partition("@")
    if stage == "baseline":
        return None, _baseline
    if stage == "ava":
        return "baseline", lambda cfg, model: dict(cfg["ava"])
    if stage in ("l1_mild", "l1_aggressive"):
        return "baseline", _l1(stage.removeprefix("l1_"))
    if stage == "selector":
        return "l1_aggressive", lambda cfg, model: _pick(cfg["sota"]["selector"],
                                                         SELECTOR_KEYS)
    if family in DYNAMIC_KEYS and point.isdigit():
        return "baseline", _dynamic(family, int(point))
    if stage.startswith("aap-"):
        variant, _, index = stage.removeprefix("aap-").rpartition("-")
        if variant in AAP_BACKBONE and index.isdigit():
            return AAP_BACKBONE[variant], _aap(variant, int(index))
    raise ValueError(f"unknown training stage {stage!r}")


def stage_identity(cfg: dict, model: str, stage: str) -> str:
    """Hash of what trains `stage` of `model` and of its parent's identity."""
    parent, trained_by = parent_and_training(stage)
    return fingerprint({
        "model": model, "stage": stage, "trained_by": trained_by(cfg, model),
        "parent": None if parent is None else stage_identity(cfg, model, parent),
    })


def aap_stage(variant: str, point: int | str) -> str:
    """The stage name of one controller."""
    return f"aap-{variant}-{point}"
