"""A stage's identity (dance.identity) against a specification written here, key by key:
every key of the validated default config is changed once, and exactly the stages that key
trains, and the stages built on them, must change identity. A key this file does not know
fails the test, so a new config key gets a decision."""

from __future__ import annotations

import copy
import fnmatch

import pytest

from dance import config as config_mod
from dance.aap.factory import aap_meta
from dance.errors import ConfigError
from dance.identity import aap_stage, stage_identity
from dance.models.trained import model_meta
from dance.plan import training_stages
from dance.sota.selector import selector_meta

# key (dotted prefix; the longest one that matches counts) → the stages it trains directly,
# as "model:stage" patterns. The stages built on them follow from PARENT below.
TRAINS = {
    "results_dir": (), "figures_dir": (), "work_dir": (), "device": (), "threads": (),
    "models": (), "bench": (), "energy": (), "devices": (), "resources": (), "plots": (),
    "claims": (),
    "seed": ("*:baseline",), "dataset": ("*:baseline",), "model": ("*:baseline",),
    "train": ("*:baseline",),
    "train.progress": (),
    "train.lr": ("c3d:baseline",),  # R3D-18's is train.per_model.r3d18.lr
    "train.per_model.c3d": ("c3d:baseline",),
    "train.per_model.r3d18": ("r3d18:baseline",),
    "ava": ("*:ava",),
    # the compared methods fine-tune with AVA's rate and warm-up (their own rates are
    # null by default), for sota.epochs epochs (set by default, so not AVA's epochs)
    "ava.lr": ("*:ava", "*:l1_*", "*:gating@*", "*:frame_skip@*"),
    "ava.warmup_epochs": ("*:ava", "*:l1_*", "*:gating@*", "*:frame_skip@*"),
    "aap": ("*:aap-*",),
    "aap.points": (),               # appended to: no existing controller changes
    "aap.points[0]": ("*:aap-*-0",),
    "aap.ablations": (), "aap.ablation_points": (), "aap.decision_clips": (),
    "aap.pruned_check_clips": (), "aap.frame_exec": (),
    "aap.latency_table": (),        # a MAC-trained controller (the default) does not read it
    "aap.latency_table_file": (),
    "sota.epochs": ("*:l1_*", "*:gating@*", "*:frame_skip@*"),
    "sota.l1.mild": ("*:l1_mild",),
    "sota.l1.aggressive": ("*:l1_aggressive",),
    "sota.l1": ("*:l1_*",),
    "sota.selector": ("*:selector",),
    "sota.selector.thresholds": (),
    "sota.gating": ("*:gating@*",),
    "sota.gating.points": (),
    "sota.gating.points[0]": ("*:gating@0",),
    "sota.frame_skip": ("*:frame_skip@*",),
    "sota.frame_skip.points": (),
    "sota.frame_skip.points[0]": ("*:frame_skip@0",),
    "sota.matched": (),
}

PARENT = {"ava": "baseline", "l1_mild": "baseline", "l1_aggressive": "baseline",
          "selector": "l1_aggressive", "gating": "baseline", "frame_skip": "baseline",
          "aap-no_ava": "baseline", "aap": "ava"}


def _parent(stage: str) -> str | None:
    if stage == "baseline":
        return None
    if stage.startswith("aap-no_ava-"):
        return PARENT["aap-no_ava"]
    if stage.startswith("aap-"):
        return PARENT["aap"]
    return PARENT[stage.partition("@")[0]]


def stages(cfg: dict) -> list[tuple[str, str]]:
    return training_stages(cfg)


def identities(cfg: dict) -> dict[tuple[str, str], str]:
    return {ms: stage_identity(cfg, *ms) for ms in stages(cfg)}


def leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return value + "_x"
    if value is None:
        return 0.5
    raise TypeError(value)


def perturbations(cfg: dict):
    """(spec key, changed config): each leaf once; a list is appended to, and a list of
    points also has its first entry changed."""
    for key, value in leaves(cfg):
        new = copy.deepcopy(cfg)
        *path, last = key.split(".")
        node = new
        for part in path:
            node = node[part]
        if isinstance(value, list):
            node[last] = [*value, value[-1]] if value else [1]
            yield key, new
            if key.endswith("points"):
                first = copy.deepcopy(cfg)
                holder = first
                for part in path:
                    holder = holder[part]
                holder[last] = [changed(value[0]) if not isinstance(value[0], int)
                                else value[0] + 1, *value[1:]]
                yield f"{key}[0]", first
        else:
            node[last] = changed(value)
            yield key, new


def expected(key: str, cfg: dict) -> set[tuple[str, str]]:
    matches = [k for k in TRAINS if key == k or key.startswith((k + ".", k + "["))]
    assert matches, f"config key {key!r}: add to TRAINS which stages it trains"
    patterns = TRAINS[max(matches, key=len)]

    def direct(model: str, stage: str) -> bool:
        return any(fnmatch.fnmatch(f"{model}:{stage}", p) for p in patterns)

    def hit(model: str, stage: str | None) -> bool:
        return stage is not None and (direct(model, stage) or hit(model, _parent(stage)))

    return {ms for ms in stages(cfg) if hit(*ms)}


DEFAULT = config_mod.load()
CASES = list(perturbations(DEFAULT))


@pytest.mark.parametrize(("key", "cfg"), CASES, ids=[k for k, _ in CASES])
def test_each_key_changes_exactly_the_stages_it_trains(key, cfg):
    before, after = identities(DEFAULT), identities(cfg)
    moved = {ms for ms in before.keys() & after.keys() if before[ms] != after[ms]}
    assert moved == expected(key, DEFAULT) & after.keys(), key


def test_the_specification_covers_the_key_list_and_moves_every_stage_somewhere():
    assert len(CASES) > 150
    reached = set().union(*(expected(k, DEFAULT) for k, _ in CASES))
    assert reached == set(stages(DEFAULT))


@pytest.mark.parametrize("key", ["channels", "features", "frames", "repeats", "warmup"])
def test_a_latency_trained_controller_is_retrained_by_its_table_keys(key):
    latency = config_mod.merge(DEFAULT, {"aap": {"cost": "latency"}})
    other = copy.deepcopy(latency)
    table = other["aap"]["latency_table"]
    table[key] = [*table[key], 0.9] if isinstance(table[key], list) else table[key] + 1
    aap = {ms for ms in stages(latency) if ms[1].startswith("aap-")}
    assert moved(latency, other) == aap
    # a pinned table replaces this run's grid: its keys then move nothing, the file does
    pin = {"aap": {"latency_table_file": "tables/{model}.csv"}}
    pinned, pinned_other = config_mod.merge(latency, pin), config_mod.merge(other, pin)
    assert moved(pinned, pinned_other) == set()
    assert moved(latency, pinned) == aap


def moved(a: dict, b: dict) -> set[tuple[str, str]]:
    before, after = identities(a), identities(b)
    return {ms for ms in before.keys() & after.keys() if before[ms] != after[ms]}


def test_a_point_that_does_not_exist_is_named_with_its_key():
    for stage, key in (("aap-dance-9", "aap.points"), ("gating@7", "sota.gating.points")):
        with pytest.raises(ConfigError, match=rf"point \d does not exist: config key '{key}'"):
            stage_identity(DEFAULT, "c3d", stage)


def test_identical_configs_give_identical_identities_and_every_stage_its_own():
    again = config_mod.load()
    assert identities(again) == identities(DEFAULT)
    assert len(set(identities(DEFAULT).values())) == len(stages(DEFAULT))


def test_unknown_stages_are_refused():
    for stage in ("aap-dance", "aap-nope-1", "gating@x", "l1_medium", "selector@1"):
        with pytest.raises(ValueError, match="unknown training stage"):
            stage_identity(DEFAULT, "c3d", stage)


def test_checkpoints_record_the_identity_the_rules_use(tmp_path):
    """model_meta / aap_meta / selector_meta store stage_identity as their fingerprint: the
    value the training rules' params trigger is (workflow/rules/common.smk, `identity`)."""
    cfg = config_mod.merge(DEFAULT, {"work_dir": str(tmp_path)})
    for stage in ("baseline", "ava", "l1_mild", "l1_aggressive", "gating@2", "frame_skip@0"):
        assert model_meta(cfg, "c3d", stage, 10)["fingerprint"] == \
            stage_identity(cfg, "c3d", stage)
    assert selector_meta(cfg, "r3d18", 10)["fingerprint"] == \
        stage_identity(cfg, "r3d18", "selector")
    for variant, point in (("dance", 0), ("no_ava", 3), ("frames", 3)):
        meta = aap_meta(cfg, "c3d", variant, point, 10)
        assert meta["fingerprint"] == stage_identity(cfg, "c3d", aap_stage(variant, point))
    rules = "".join(p.read_text() for p in
                    (config_mod.DEFAULT_CONFIG.parents[1] / "rules").glob("*.smk"))
    assert rules.count("identity=identity(") == 6      # every training rule
