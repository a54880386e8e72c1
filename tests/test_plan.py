"""dance.plan, the one list of the workflow's jobs: it plans without torch, it follows the
config the way the steps do, and the DAG Snakemake builds is exactly the plan."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from dance import config as config_mod
from dance import plan
from dance.errors import ConfigError
from dance.identity import stage_identity
from dance.paths import Paths

from conftest import REPO, dry_run, job_counts, run, smoke_args, tiny_config

SMOKE = REPO / "workflow" / "config" / "smoke.yaml"


def test_the_plan_imports_without_torch():
    code = "import sys, dance.plan; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr


def test_an_added_operating_point_adds_one_dance_point_and_no_ablation(tmp_path):
    before = tiny_config(tmp_path, aap={"points": [0.5, 0.33], "ablation_points": [1]})
    after = tiny_config(tmp_path, aap={"points": [0.5, 0.33, 0.2], "ablation_points": [1]})
    assert before["aap"]["ablations"]                    # there are ablations to leave alone
    assert set(plan.aap_pairs(after)) - set(plan.aap_pairs(before)) == {("dance", 2)}
    assert set(plan.aap_pairs(before)) <= set(plan.aap_pairs(after))


def test_an_ablation_point_is_planned_once_its_operating_point_exists(tmp_path):
    short = tiny_config(tmp_path, aap={"points": [0.5, 0.33], "ablation_points": [0, 2]})
    assert plan.aap_points(short) == {"dance": [0, 1],
                                      **{v: [0] for v in short["aap"]["ablations"]}}
    longer = tiny_config(tmp_path, aap={"points": [0.5, 0.33, 0.2], "ablation_points": [0, 2]})
    added = set(plan.aap_pairs(longer)) - set(plan.aap_pairs(short))
    assert added == {("dance", 2), *((v, 2) for v in longer["aap"]["ablations"])}


def test_export_points_default_to_every_dance_point_and_refuse_an_untrained_one(tmp_path):
    cfg = tiny_config(tmp_path, aap={"points": [0.5, 0.33, 0.2]})
    assert plan.export_points(cfg) == [0, 1, 2]
    assert plan.export_points(tiny_config(tmp_path, aap={"points": [0.5, 0.33]},
                                          devices={"points": [1]})) == [1]
    bad = tiny_config(tmp_path, aap={"points": [0.5, 0.33]}, devices={"points": [0, 4]})
    with pytest.raises(ConfigError, match=r"'devices\.points' lists \[4\].*trained DANCE points: \[0, 1\]"):
        plan.export_points(bad)


def test_selector_points_are_the_records_the_selector_writes(tmp_path):
    """The names route() gives its points are the records' names (evaluate_selector writes
    one record per routed point), in the plan's order."""
    from dance.sota.selector import route

    cfg = tiny_config(tmp_path, sota={"selector": {"thresholds": [0.3, 0.75, 1]}})
    conf = np.array([0.2, 0.8, 0.5])
    routed = route(cfg["sota"]["selector"]["thresholds"], conf, np.array([1, 0, 1], bool))
    assert list(routed) == plan.selector_points(cfg)
    assert plan.selector_points(cfg) == ["t0.3", "t0.75", "t1", "always_aggressive",
                                         "always_mild", "oracle"]
    paths = Paths(cfg)
    assert plan.selector_records(cfg, "c3d") == [paths.sota_record("c3d", "selector", name)
                                                 for name in routed]


def test_every_planned_dynamic_point_is_a_stage_the_steps_train(tmp_path):
    from dance.sota.dynamic import point_value

    cfg = tiny_config(tmp_path, sota={"gating": {"points": [0.7, 0.5, 0.35]},
                                      "frame_skip": {"points": [0.75]}})
    planned = plan.dynamic_points(cfg)
    assert [(r, m) for r, m, _ in planned] == [("fbs", "gating")] * 3 + [("frame_skip",
                                                                           "frame_skip")]
    for record, method, k in planned:
        assert plan.DYNAMIC_METHOD[record] == method
        point_value(cfg["sota"], method, k)                          # the step accepts it
        stage_identity(cfg, "c3d", plan.dynamic_stage(method, k))    # a stage it trains


def _outputs(dry_run_text: str) -> set[str]:
    """Every file a dry run's jobs would write."""
    return {f for line in re.findall(r"^\s+output: (.*)$", dry_run_text, re.M)
            for f in line.split(", ")}


@pytest.mark.parametrize("extra", [None, {"aap": {"points": [0.5, 0.4, 0.33],
                                                  "ablation_points": [0, 7]},
                                          "devices": {"points": [0, 2]},
                                          "sota": {"selector": {"thresholds": [0.5, 0.8]},
                                                   "gating": {"points": [0.7, 0.5, 0.35]}}}])
def test_the_workflow_plans_exactly_the_plans_jobs(tmp_path, extra):
    """Dry runs of the smoke config (and of it with more points) make one training and one
    evaluation job per planned point, and a job writes every record and checkpoint the
    comparison and the export read."""
    files = [SMOKE]
    if extra is not None:
        files.append(tmp_path / "extra.yaml")
        files[-1].write_text(json.dumps(extra))     # JSON is YAML
    root = tmp_path / "run"
    cfg = config_mod.resolve(files, {"results_dir": f"{root}/results",
                                     "figures_dir": f"{root}/figures",
                                     "work_dir": f"{root}/work"})
    text = dry_run(root, *map(str, files[1:]))
    counts, models = job_counts(text), len(cfg["models"])
    for rule in ("train_aap", "evaluate_aap"):
        assert counts[rule] == models * len(plan.aap_pairs(cfg)), rule
    for rule in ("train_dynamic", "evaluate_dynamic"):
        assert counts[rule] == models * len(plan.dynamic_points(cfg)), rule
    for rule in ("train_l1", "evaluate_l1"):
        assert counts[rule] == models * len(plan.L1_LEVELS), rule
    planned = {str(p) for p in (*plan.comparison_records(cfg), *plan.export_checkpoints(cfg))}
    assert planned <= _outputs(text), sorted(planned - _outputs(text))


def test_the_workflow_refuses_an_export_point_it_does_not_train(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("devices: {points: [0, 9]}\n")
    proc = run([sys.executable, "-m", "snakemake", "-n", "--cores", "1",
                *smoke_args(tmp_path, str(extra))])
    assert proc.returncode != 0
    assert "'devices.points' lists [9]" in proc.stdout + proc.stderr
