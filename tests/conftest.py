"""Shared test helpers: tiny configs and a subprocess runner for the CLI and Snakemake."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dance import config as config_mod

REPO = Path(__file__).resolve().parents[1]


def tiny_config(tmp_path: Path, **overrides) -> dict:
    """A validated config with a very small data set, writing everything under tmp_path."""
    raw = {
        "results_dir": str(tmp_path / "results"),
        "figures_dir": str(tmp_path / "figures"),
        "work_dir": str(tmp_path / "work"),
        "device": "cpu",
        "threads": 1,
        "dataset": {"frames": 8, "size": 32, "shard_size": 16,
                    "synthetic": {"train_clips": 24, "val_clips": 10, "test_clips": 10}},
        "model": {"width": 0.125},
        # SGD at 0.05: the setting the tiny-scale tests (AVA effect sizes, ...) were tuned with.
        "train": {"epochs": 2, "batch_size": 8, "progress": False, "warmup_epochs": 0.5,
                  "optimizer": "sgd", "lr": 0.05},
    }
    return config_mod.validate(config_mod.merge(raw, overrides))


def run(cmd: list[str], cwd: Path = REPO, timeout: float = 900, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def dance_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dance", *args], **kw)


def rebuild_and_compare(results: Path, figures: Path, config: Path, tmp_path: Path) -> None:
    """Copy the folder `results` alone (no work dir: no checkpoint, no data) without its
    tables, redraw every table and figure from it into tmp_path, and check that every
    table (CSV, Markdown, LaTeX) and every figure's data CSV equal those in `results` and
    `figures`."""
    import shutil

    from dance.report import registry

    copy = tmp_path / "results"
    shutil.copytree(results, copy, ignore=shutil.ignore_patterns("tables"))
    sets = ["--set", f"results_dir={copy}", "--set", f"figures_dir={tmp_path / 'figures'}",
            "--set", f"work_dir={tmp_path / 'no-work'}"]
    for kind in ("table", "figure"):
        proc = dance_cli(kind, "all", "--config", str(config), *sets, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "no-work").exists()
    cfg = config_mod.load(config, {"results_dir": str(copy),
                                   "figures_dir": str(tmp_path / "figures")})
    for a in registry.ARTIFACTS.values():
        for path in a.outputs(cfg):
            assert path.stat().st_size > 0, path
            if path.suffix in (".csv", ".md", ".tex"):
                ref = (results if a.kind == "table" else figures) / path.relative_to(
                    copy if a.kind == "table" else tmp_path / "figures")
                assert path.read_text() == ref.read_text(), path.name


# Fixtures that train a network (or run the workflow, which does): every test that uses one
# is marked slow, so `python -m pytest -m "not slow"` trains nothing (issue 24.5). Tests
# that call a training function themselves carry the mark in their module.
TRAINING_FIXTURES = frozenset({"tiny_baselines", "tiny_baseline", "trained_point", "trained",
                               "smoke_run", "second_smoke_run"})


def stage_schedule(monkeypatch, module, train, *args):
    """The schedule `train(*args)` (a function of `module`) hands to the training loop of
    :func:`dance.train.stage.train_stage`, which is not run: what a stage really trains with."""
    from dance.train import stage

    handed = []

    def capture(cfg, model_name, stage_name, sched, **kw):
        handed.append(sched)

    monkeypatch.setattr(stage, "train_stage", capture)
    if hasattr(module, "train_stage"):          # imported by name: patched there too
        monkeypatch.setattr(module, "train_stage", capture)
    train(*args)
    (sched,) = handed
    return sched


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def tiny(tmp_path: Path) -> dict:
    return tiny_config(tmp_path)


@pytest.fixture(scope="session")
def tiny_baselines(tmp_path_factory) -> dict:
    """The tiny data set and the tiny baselines of both models, trained once per session.
    A module takes its own copy (:func:`copy_trained`) and trains on top of it: a
    baseline's identity does not cover the `ava`, `aap`, `bench` or `sota` keys, so every
    module's config accepts it."""
    from dance.data import prepare
    from dance.train.baseline import train_baseline

    cfg = tiny_config(tmp_path_factory.mktemp("tiny-baselines"))
    prepare(cfg, progress=False)
    for name in cfg["models"]:
        train_baseline(cfg, name)
    return cfg


def copy_trained(trained: dict, root: Path, **overrides) -> dict:
    """`trained`'s work folder (data, checkpoints) copied under `root`, with the tiny
    config of `root` and `overrides`."""
    import shutil

    cfg = tiny_config(root, **overrides)
    shutil.copytree(trained["work_dir"], cfg["work_dir"])
    return cfg


# --- the smoke workflow, run once per test session -------------------------------------------

# Measured time (host latency, speed-ups, power, export time, the run's date) differs between
# two runs by nature, so the determinism and Slurm tests leave it out, by name, and compare
# everything else byte for byte (docs/usage.md "Reproducibility"). Files that hold only measured time:
MEASURED_FILES = ("bench_*.csv", "bench_*.json", "f9_devices.csv", "latency_table.csv",
                  "latency_table.json")
# JSON keys (at any depth) and CSV columns that hold measured time or follow from it:
MEASURED_FIELDS = frozenset({
    "median_ms", "dense_median_ms", "speedup", "latency_ms", "speedup_measured",
    "realised_over_ideal", "speedup_status", "meets_targets",          # host latency
    "speedup_floor", "speedup_amdahl", "realised_over_amdahl", "dense_floor_ms",
    "latency_median_ms", "latency_iqr_ms", "speedup_vs_dense", "avg_power_w",
    "idle_power_w", "energy_j_per_clip", "energy_efficiency_clips_per_j",  # devices.csv
    "iqr_ms", "dense_iqr_ms", "load_average_1m",                        # their spread, load
    "export_seconds",                                                     # onnx_export.json
    "speedup_tau0", "speedup_decide", "controller_overhead_ms",           # overhead probes
    "decision_overhead_us_per_conv",
    "dance_speedup", "other_speedup",                                     # T4's speed-ups
})
# Fields that are not time but record when and where the run happened (the tests run into
# different folders; the config fingerprint covers those folders): {file name: keys}.
RUN_FIELDS = {"provenance.json": {"run", "results_dir", "figures_dir", "work_dir",
                                  "config_fingerprint"}}
# Rows that are measured time as a whole: {file name: (column, values)}.
MEASURED_ROWS = {"claims.csv": ("claim_id", {"speedup_host"})}


def smoke_args(root: Path, *configfiles: str) -> list[str]:
    """The smoke config (then `configfiles` over it) with every output under `root`."""
    return ["--configfile", "workflow/config/smoke.yaml", *configfiles, "--config",
            f"results_dir={root}/results", f"figures_dir={root}/figures", f"work_dir={root}/work"]


def dry_run(root: Path, *configfiles: str) -> str:
    """What a dry run of :func:`smoke_args` prints: the jobs it would run, with their files."""
    proc = run([sys.executable, "-m", "snakemake", "-n", "--cores", "1",
                *smoke_args(root, *configfiles)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def job_counts(dry_run_text: str) -> dict[str, int]:
    """Rule name → jobs a dry run would execute (from its job-count table)."""
    if "Nothing to be done" in dry_run_text:
        return {}
    table = dry_run_text.split("job ", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def run_smoke(root: Path, *extra: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    # smoke_args first: --configfile/--config take several values in Snakemake 9.
    return run([sys.executable, "-m", "snakemake", *extra, *smoke_args(root)], timeout=timeout)


def comparable_outputs(root: Path) -> dict[str, bytes]:
    """Every metric, table and claim file (CSV, JSON, Markdown) a run wrote under results/
    and figures/, by relative path, without measured time (see MEASURED_FIELDS). A Markdown
    table with a CSV beside it is the same data rendered, and is compared through the CSV."""
    import csv
    import fnmatch
    import io
    import json

    def strip(value, drop):
        if isinstance(value, dict):
            return {k: strip(v, drop) for k, v in value.items() if k not in drop}
        if isinstance(value, list):
            return [strip(v, drop) for v in value]
        return value

    out = {}
    for kind in ("results", "figures"):
        for path in sorted((root / kind).rglob("*")):
            if path.suffix not in (".csv", ".json", ".md") or any(
                    fnmatch.fnmatch(path.name, pat) for pat in MEASURED_FILES):
                continue
            if path.suffix == ".md" and path.with_suffix(".csv").exists():
                continue
            data = path.read_bytes()
            drop = MEASURED_FIELDS | RUN_FIELDS.get(path.name, set())
            if path.suffix == ".json":
                data = json.dumps(strip(json.loads(data), drop), sort_keys=True).encode()
            elif path.suffix == ".csv" and data.strip():
                rows = list(csv.DictReader(io.StringIO(data.decode())))
                column, values = MEASURED_ROWS.get(path.name, (None, set()))
                rows = [r for r in rows if r.get(column) not in values]
                keep = [c for c in rows[0] if c not in drop] if rows else []
                data = "\n".join(",".join(r[c] for c in keep) for r in rows).encode()
            out[path.relative_to(root).as_posix()] = data
    return out


def assert_same_outputs(a: Path, b: Path) -> None:
    left, right = comparable_outputs(a), comparable_outputs(b)
    assert sorted(left) == sorted(right)
    differ = [name for name in left if left[name] != right[name]]
    assert not differ, f"differ between {a} and {b}: {differ}"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """One local run of the smoke workflow, shared by the end-to-end tests."""
    root = tmp_path_factory.mktemp("smoke")
    proc = run_smoke(root, "--cores", "2")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return root


# --- a second run from scratch: through Slurm where this host can be a cluster -------------

SLURM_SETUP = REPO / "tests" / "slurm" / "setup_localhost.sh"


def why_no_slurm() -> str | None:
    """Why this host cannot run the smoke workflow through Slurm (None: it can)."""
    import shutil

    if os.geteuid() != 0:
        return "needs root: the set-up installs Slurm with apt-get and starts its daemons"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "Slurm is not installed and there is no apt-get to install it from Debian"
    return None


@dataclass(frozen=True)
class SecondRun:
    root: Path
    via_slurm: bool
    log: str        # the run's log; for a local run, why it did not go through Slurm


@pytest.fixture(scope="session")
def second_smoke_run(tmp_path_factory) -> SecondRun:
    """The smoke workflow run a second time from scratch, for the determinism test (same
    outputs as `smoke_run`) and the Slurm test (it went through the cluster): one run serves
    both, which keeps the suite within its time budget. Through Snakemake's Slurm executor
    on a one-node cluster set up on this host (tests/slurm/setup_localhost.sh) where that
    is possible, as in CI; a local run elsewhere."""
    root = tmp_path_factory.mktemp("smoke-again")
    setup = None if why_no_slurm() else subprocess.run(
        ["bash", str(SLURM_SETUP)], capture_output=True, text=True, timeout=900)
    if setup is None or setup.returncode != 0:    # the Slurm test says why; this run is local
        proc = run_smoke(root, "--cores", "2")
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        why = why_no_slurm() or f"Slurm set-up failed: {setup.stdout}{setup.stderr}"
        return SecondRun(root, False, why)
    proc = run_smoke(root, "--profile", "workflow/profiles/slurm",
                     # No account: the plugin tries sacctmgr/sshare, finds none, submits
                     # without one (its --slurm-no-account flag is a no-op in 2.8).
                     "--slurm-status-command", "squeue",
                     "--slurm-init-seconds-before-status-checks", "5",
                     "--slurm-logdir", str(root / "slurm_logs"))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return SecondRun(root, True, log)
