"""Every paper table and figure: its id, file name, the result files it reads, its code.

One place that the Snakemake rules (``workflow/rules/paper.smk``: inputs of each rule) and
the CLI (``python -m dance table T2`` / ``figure F6``) both ask, so that what a rule
depends on is what its code reads. ``inputs`` are required result files; ``optional`` are
files of stages that may not have run (state-of-the-art comparison, device runs): the
artifact reads them when present and otherwise says "not available yet".

Imports nothing heavy (no torch, no matplotlib): the Snakefile imports it at parse time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dance.paths import Paths
from dance.plan import aap_points

Inputs = Callable[[dict], list[Path]]


def _none(cfg: dict) -> list[Path]:
    return []


@dataclass(frozen=True)
class Artifact:
    id: str                    # T1..T4, F1..F10
    kind: str                  # "table" or "figure"
    name: str                  # file stem in tables/ or figures_dir
    title: str                 # caption headline (tables, figures, report)
    module: str                # module drawing it; its function is `build_<id>`
    inputs: Inputs             # required result files
    optional: Inputs = field(default=_none)   # files of optional stages, read when present
    settings: tuple[str, ...] = ()   # config sections it reads besides its inputs (the rule's
                                     # params trigger; figures also read `plots`)

    @property
    def function(self) -> str:
        return f"build_{self.id.lower()}"

    def outputs(self, cfg: dict) -> list[Path]:
        paths = Paths(cfg)
        if self.kind == "table":
            return [paths.table(self.name, ext) for ext in ("csv", "md", "tex")]
        return [paths.figure(self.name, ext) for ext in ("png", "pdf", "csv")]


# --- the files artifacts read ------------------------------------------------------------
def _dance_points(cfg: dict) -> list[int]:
    return aap_points(cfg)["dance"]


def _first_model(cfg: dict) -> str:
    return cfg["models"][0]


def _t1(cfg: dict) -> list[Path]:
    p = Paths(cfg)
    files = [p.profile_summary]
    for m in cfg["models"]:
        files += [p.evaluation(m, "baseline"), p.evaluation(m, "ava"), p.ava_summary(m)]
    return files


def _summary(cfg: dict) -> list[Path]:
    return [Paths(cfg).dance_summary]


def _devices(cfg: dict) -> list[Path]:
    return [Paths(cfg).devices_summary]


def _comparison(cfg: dict) -> list[Path]:
    p = Paths(cfg)
    return [p.comparison, p.comparison_matched]


def _masks_first_model(cfg: dict) -> list[Path]:
    p, m = Paths(cfg), _first_model(cfg)
    return [p.dance_summary, *(p.aap_masks(m, "dance", k) for k in _dance_points(cfg))]


def _decisions_first_model(cfg: dict) -> list[Path]:
    p, m = Paths(cfg), _first_model(cfg)
    return [p.dance_summary, *(p.aap_decisions(m, "dance", k) for k in _dance_points(cfg))]


def _ava_histories(cfg: dict) -> list[Path]:
    return [Paths(cfg).history(m, "ava") for m in cfg["models"]]


def _dance_evals(cfg: dict) -> list[Path]:
    p = Paths(cfg)
    return [p.dance_summary, *(p.aap_eval(m, "dance", k) for m in cfg["models"]
                               for k in _dance_points(cfg))]


def _ava_profiles(cfg: dict) -> list[Path]:
    return [Paths(cfg).ava_profiles(m) for m in cfg["models"]]


def _tradeoff(cfg: dict) -> list[Path]:
    p = Paths(cfg)
    return [p.dance_summary, *(p.evaluation(m, "baseline") for m in cfg["models"])]


def _per_clip(cfg: dict) -> list[Path]:
    p = Paths(cfg)
    return [p.dance_summary, *(f for m in cfg["models"] for k in _dance_points(cfg)
                               for f in (p.aap_eval(m, "dance", k),
                                         p.aap_decisions(m, "dance", k)))]


def claims_inputs(cfg: dict) -> list[Path]:
    p = Paths(cfg)
    return [p.dance_summary, *(f for m in cfg["models"] for f in (p.ava_sparsity(m),
                                                                  p.aap_bench(m)))]


def claims_optional(cfg: dict) -> list[Path]:
    p = Paths(cfg)
    return [p.devices_summary, p.comparison_matched]


_T, _F = "dance.report.tables", "dance.report.figures"
ARTIFACTS: dict[str, Artifact] = {a.id: a for a in [
    Artifact("T1", "table", "t1_models", "T1. Models and data: accuracy, size and dense cost, "
             "baseline vs AVA", f"{_T}.models", _t1, settings=("dataset",)),
    Artifact("T2", "table", "t2_savings", "T2. DANCE savings per operating point, with "
             "ablations", f"{_T}.savings", _summary, settings=("claims",)),
    Artifact("T3", "table", "t3_devices", "T3. Latency, speed-up, power and energy per "
             "device", f"{_T}.devices", _none, _devices),
    Artifact("T4", "table", "t4_sota", "T4. DANCE vs the state of the art at matched "
             "accuracy", f"{_T}.sota", _none, _comparison),
    Artifact("F1", "figure", "f1_pruned_tensor", "F1. Frames, channels and features kept "
             "for one test clip", f"{_F}.pruning", _masks_first_model, settings=("claims",)),
    Artifact("F2", "figure", "f2_ava_training", "F2. AVA loss terms during fine-tuning",
             f"{_F}.ava", _ava_histories),
    Artifact("F3", "figure", "f3_clip_patterns", "F3. Per-layer pruning pattern of sample "
             "clips", f"{_F}.pruning", _decisions_first_model, settings=("claims",)),
    Artifact("F4", "figure", "f4_overhead", "F4. Cost of the 3D CNN, the AVA statistics and "
             "the AAP controller", f"{_F}.overhead", _dance_evals, settings=("claims",)),
    Artifact("F5", "figure", "f5_magnitudes", "F5. Frame, channel and feature magnitude "
             "profiles before and after AVA", f"{_F}.ava", _ava_profiles),
    Artifact("F6", "figure", "f6_accuracy_macs", "F6. Accuracy vs effective MACs of every "
             "method", f"{_F}.tradeoff", _tradeoff, lambda cfg: [Paths(cfg).comparison],
             settings=("claims",)),
    Artifact("F7", "figure", "f7_layer_pruning", "F7. Per-layer pruning ratios",
             f"{_F}.pruning", _dance_evals, settings=("claims",)),
    Artifact("F8", "figure", "f8_macs_difficulty", "F8. Per-clip MACs vs clip difficulty",
             f"{_F}.tradeoff", _per_clip, settings=("claims",)),
    Artifact("F9", "figure", "f9_devices", "F9. Speed-up and energy per device",
             f"{_F}.devices", _none, _devices),
    Artifact("F10", "figure", "f10_efficiency", "F10. Energy efficiency vs the state of the "
             "art", f"{_F}.sota", _none, _comparison, settings=("energy",)),
]}
TABLES = [a for a in ARTIFACTS.values() if a.kind == "table"]
FIGURES = [a for a in ARTIFACTS.values() if a.kind == "figure"]

# Code every artifact of a kind shares: editing it re-runs that kind's rules only.
SHARED_CODE = {"table": ["dance/report/tables/common.py", "dance/report/data.py"],
               "figure": ["dance/report/style.py", "dance/report/data.py"]}


def get(artifact_id: str) -> Artifact:
    from dance.errors import DanceError

    key = artifact_id.upper()
    if key not in ARTIFACTS:
        raise DanceError(f"unknown table/figure {artifact_id!r}; known: "
                         f"{', '.join(ARTIFACTS)}")
    return ARTIFACTS[key]


def code_files(artifact_id: str) -> list[Path]:
    """Source files of an artifact (its module and the shared style or table writer),
    relative to the repository (the Snakefile's working directory)."""
    a = get(artifact_id)
    files = ["/".join(a.module.split(".")) + ".py", *SHARED_CODE[a.kind]]
    return [Path("src") / f for f in files]


def build(cfg: dict, artifact_id: str) -> list[Path]:
    """Draw/write one artifact from the result files; return the files written."""
    a = get(artifact_id)
    fn = getattr(importlib.import_module(a.module), a.function)
    return fn(cfg, a)
