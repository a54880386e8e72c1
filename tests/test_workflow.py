"""End to end: the smoke config runs the whole DAG into a temporary folder, once; every
check of the finished run (outputs, second run, HTML report, what re-runs after a plotting
change, rebuilding tables and figures from the results alone) shares that one run."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dance.report import registry

from conftest import (
    REPO,
    assert_same_outputs,
    comparable_outputs,
    dry_run,
    job_counts,
    rebuild_and_compare,
    run,
    smoke_args,
)

SNAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture
def smoke(smoke_run) -> Path:
    """The session's finished smoke run (conftest.smoke_run): one smoke run for every e2e test."""
    return smoke_run


def _dry_run_counts(root: Path, *configfiles: str) -> dict[str, int]:
    """Rule name → jobs a dry run would execute."""
    return job_counts(dry_run(root, *configfiles))


def _dry_run_jobs(root: Path, *configfiles: str) -> set[str]:
    """Rule names a dry run would execute."""
    return set(_dry_run_counts(root, *configfiles))


FIGURE_RULES = {f"figure_{a.id}" for a in registry.FIGURES}


@pytest.mark.slow
def test_smoke_workflow_produces_every_output(smoke):
    summary = run([*SNAKE, "--summary", "--cores", "1", *smoke_args(smoke)])
    assert summary.returncode == 0, summary.stderr[-2000:]
    rows = [line.split("\t") for line in summary.stdout.splitlines()[1:] if "\t" in line]
    outputs = [r[0] for r in rows]
    assert len(outputs) > 10
    for path in outputs:
        assert (smoke / path).exists() or Path(path).exists(), path
    for kind in ("results", "figures"):
        assert any(p.startswith(f"{smoke}/{kind}") for p in outputs), kind
    for a in registry.ARTIFACTS.values():
        assert any(p.endswith(f"/{a.name}.{'csv' if a.kind == 'table' else 'png'}")
                   for p in outputs), a.id

    assert _dry_run_jobs(smoke) == set()

    prov = json.loads((smoke / "results" / "provenance.json").read_text())
    if (REPO / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", prov["reproducible"]["code"]["commit"])


@pytest.mark.slow
def test_smoke_claims_have_every_claim_per_model(smoke):
    with open(smoke / "results" / "claims.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    ids = {r["claim_id"] for r in rows}
    assert ids == {"speedup_jetson_nano", "speedup_snapdragon", "energy_efficiency_vs_sota",
                   "energy_efficiency_vs_dense", "accuracy_impact", "mac_savings",
                   "memory_savings", "ava_variance_gain", "speedup_host"}
    # no device attached, no comparison in this workflow yet: not measured, never invented
    for r in rows:
        if r["claim_id"].startswith("speedup_") and r["claim_id"] != "speedup_host":
            assert r["verdict"] == "not measured" and r["measured_value"] == ""
        if r["claim_id"] == "speedup_host":
            assert float(r["measured_value"]) > 0 and r["verdict"] == "no paper value"


@pytest.mark.slow
def test_smoke_summary_bounds_every_point_by_the_timed_floor(smoke):
    """bench_aap times dense-floor beside dense, so every benched point has a floor bound
    and an Amdahl speed-up, the latter between 1 and the bound. The floor skips work, but
    on a loaded host one noisy median can still come out slower than dense (0.37× once,
    beside a training run): that is measured time, not a wiring fault, so the Amdahl bound is
    checked where the floor was faster (its unit test covers the arithmetic)."""
    with open(smoke / "results" / "metrics" / "dance_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    for r in rows:
        floor, amdahl = float(r["speedup_floor"]), float(r["speedup_amdahl"])
        assert floor > 0 and amdahl > 0, r
        if floor > 1.0:
            assert 1.0 <= amdahl <= floor, r


@pytest.mark.slow
def test_html_report_holds_every_table_and_figure(smoke, tmp_path):
    out = tmp_path / "report.html"
    proc = run([*SNAKE, "--cores", "1", "--report", str(out), *smoke_args(smoke)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = out.read_text(errors="replace")
    for a in registry.ARTIFACTS.values():
        shown = f"{a.name}.{'csv' if a.kind == 'table' else 'png'}"
        assert shown in html, shown
    for name in ("claims.csv", "provenance.json", "dataset_samples.png"):
        assert name in html, name


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no Chromium here (.ci/run installs Debian's)")
def test_html_report_renders_in_a_real_browser(smoke, tmp_path):
    """The report is a JavaScript app: its sections exist only once a browser has run it.
    Headless Chromium renders it; the rendered DOM has the menu of every result category,
    and a screenshot is written for a person to look at."""
    out = tmp_path / "report.html"
    proc = run([*SNAKE, "--cores", "1", "--report", str(out), *smoke_args(smoke)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "<span>Figures</span>" not in out.read_text(errors="replace")     # not yet rendered
    browser = [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
               "--virtual-time-budget=8000", "--window-size=1400,1000"]
    dom = subprocess.run([*browser, "--dump-dom", out.as_uri()], capture_output=True,
                         text=True, timeout=300)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in ("Workflow", "Statistics", "Claims", "Figures", "Tables"):
        assert f"<span>{section}</span>" in dom.stdout, section
    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", out.as_uri()], capture_output=True,
                   timeout=300)
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_editing_plotting_code_reruns_only_figure_rules(smoke, tmp_path):
    """Plotting code is an input of the figure rules and of nothing else. Edited in a copy
    of the checkout (file times kept; no test edits the checkout itself), planned by
    modification time, the trigger a code input acts through."""
    checkout = tmp_path / "checkout"
    for part in ("workflow", "src"):
        shutil.copytree(REPO / part, checkout / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy2(REPO / "Snakefile", checkout / "Snakefile")

    def planned() -> set[str]:
        proc = run([*SNAKE, "-n", "--cores", "1", "--rerun-triggers", "mtime",
                    *smoke_args(smoke)], cwd=checkout)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return set(job_counts(proc.stdout + proc.stderr))

    assert planned() == set()
    style = checkout / "src" / "dance" / "report" / "style.py"
    style.write_text(style.read_text() + "\n# edited by test_workflow\n")
    assert planned() == FIGURE_RULES | {"all"}


@pytest.mark.slow
def test_a_plotting_option_reruns_figures_and_the_provenance_record_only(smoke, tmp_path):
    extra = tmp_path / "plots.yaml"
    extra.write_text("plots:\n  dpi: 120\n")
    # provenance records the whole config, so it is re-written too; nothing upstream is
    assert _dry_run_jobs(smoke, str(extra)) == FIGURE_RULES | {"provenance", "all"}


@pytest.mark.slow
def test_an_ava_loss_weight_reruns_ava_and_dance_but_retrains_no_compared_method(smoke, tmp_path):
    extra = tmp_path / "ava.yaml"
    extra.write_text("ava:\n  lambda: 2.5\n")
    jobs = _dry_run_jobs(smoke, str(extra))
    assert {"train_ava", "train_aap", "dance_summary"} <= jobs
    # the compared methods share AVA's fine-tuning schedule, not its loss (their evaluations
    # may re-run: the comparison bench times DANCE beside them)
    assert not jobs & {"train_l1", "train_selector", "train_dynamic"}


@pytest.mark.slow
def test_an_added_operating_point_trains_only_its_own_controller(smoke, tmp_path):
    """Appending a budget to aap.points (or changing an evaluation-only aap key) must not
    retrain the controllers that exist: their checkpoints' fingerprints do not change."""
    extra = tmp_path / "point.yaml"
    extra.write_text("aap:\n  points: [0.5, 0.33, 0.9]\n  decision_clips: 3\n")
    counts = _dry_run_counts(smoke, str(extra))
    assert counts.get("train_aap") == 1, counts          # dance@2 of the one smoke model
    assert counts.get("evaluate_aap", 0) >= 1


@pytest.mark.slow
@pytest.mark.parametrize(("change", "trains"), [
    # progress bars train nothing (the rules once hashed the whole `train` section)
    ("train:\n  progress: false\n", {}),
    ("sota:\n  l1:\n    mild: 0.3\n", {"train_l1": 1}),
    # the selector is built on the aggressive level
    ("sota:\n  l1:\n    aggressive: 0.6\n", {"train_l1": 1, "train_selector": 1}),
    ("sota:\n  gating:\n    points: [0.7, 0.4]\n", {"train_dynamic": 1}),
    ("aap:\n  pruned_check_clips: 2\n  frame_exec: taps\n", {}),
])
def test_a_key_retrains_exactly_the_stages_it_trains(smoke, tmp_path, change, trains):
    """The rules' params trigger is the checkpoints' identity (dance.identity; every key is
    checked in tests/test_identity.py): here, Snakemake re-plans accordingly."""
    extra = tmp_path / "change.yaml"
    extra.write_text(change)
    counts = _dry_run_counts(smoke, str(extra))
    assert {r: n for r, n in counts.items() if r.startswith("train_")} == trains


@pytest.mark.slow
def test_tables_and_figures_rebuild_from_the_results_folder_alone(smoke, tmp_path):
    rebuild_and_compare(smoke / "results", smoke / "figures",
                        REPO / "workflow/config/smoke.yaml", tmp_path)


@pytest.mark.slow
def test_two_runs_from_scratch_give_identical_metrics_and_tables(smoke_run, second_smoke_run):
    """Same config, same machine: byte-identical metrics, tables and claims (measured
    time excepted: conftest.MEASURED_FILES / MEASURED_FIELDS). The second run is the Slurm
    test's where this host can be a cluster (conftest `second_smoke_run`)."""
    assert len(comparable_outputs(second_smoke_run.root)) > 20
    assert_same_outputs(smoke_run, second_smoke_run.root)


def _write_run(root: Path, top1: float, median_ms: float, date: str) -> None:
    sota = root / "results/metrics/c3d/sota"
    sota.mkdir(parents=True)
    (sota / "l1_mild.json").write_text(json.dumps(
        {"top1": top1, "latency": {"median_ms": median_ms, "speedup": 10 / median_ms}}))
    (root / "results/provenance.json").write_text(json.dumps(
        {"reproducible": {"commit": "abc"}, "run": {"date": date}}))
    (root / "results/claims.csv").write_text(
        "claim_id,measured_value\naccuracy_impact,-0.5\n"
        f"speedup_host,{10 / median_ms}\n")
    (root / "results/comparison.csv").write_text(
        f"method,top1,latency_ms\nl1,{top1},{median_ms}\n")
    (root / "results/comparison.md").write_text(f"| l1 | {top1} | {median_ms} |\n")
    (root / "figures").mkdir()


def test_run_comparison_ignores_measured_time_and_nothing_else(tmp_path):
    """Two runs that differ only in timings and date compare equal; a different top-1
    anywhere does not."""
    _write_run(tmp_path / "a", 0.75, 7.0, "2026-01-01")
    _write_run(tmp_path / "b", 0.75, 9.5, "2026-01-02")
    _write_run(tmp_path / "c", 0.70, 7.0, "2026-01-01")
    assert_same_outputs(tmp_path / "a", tmp_path / "b")
    differ = r"\[.results/comparison\.csv., .results/metrics/c3d/sota/l1_mild\.json.\]"
    with pytest.raises(AssertionError, match=differ):
        assert_same_outputs(tmp_path / "a", tmp_path / "c")


@pytest.mark.parametrize("config", ["default", "smoke"])
def test_snakemake_lint_reports_nothing(tmp_path, config):
    """Both as CI lints (the default config, whose outputs are relative paths such as
    `figures/F1.png`: a param "figure" is a prefix of it) and with the smoke config."""
    args = smoke_args(tmp_path) if config == "smoke" else []
    proc = run([sys.executable, "-m", "snakemake", "--lint", *args])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_the_workflow_imports_the_package_from_its_own_checkout(tmp_path):
    """A second checkout (a worktree, an unpacked artifact) must plan with its own code,
    not with whatever copy of `dance` is installed; and a dry run must work before the
    install."""
    checkout = tmp_path / "checkout"
    for part in ("workflow", "src"):
        shutil.copytree(REPO / part, checkout / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "Snakefile", checkout / "Snakefile")
    init = checkout / "src" / "dance" / "__init__.py"
    init.write_text('raise ImportError("imported from the copied checkout")\n' + init.read_text())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([*SNAKE, "-n", "--cores", "1", *smoke_args(tmp_path)], cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "imported from the copied checkout" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_after_changing_a_training_key_the_workflow_retrains_and_finishes(smoke, tmp_path):
    """An author changes one AAP training key and re-runs: the controllers' old resume
    points (still in work/) must neither block the re-run nor be resumed from."""
    root = tmp_path / "run"
    for part in ("work", "results", "figures"):
        shutil.copytree(smoke / part, root / part, symlinks=True)
    extra = tmp_path / "cap.yaml"
    extra.write_text("aap:\n  tau_max: 1.5\n")
    # one controller is enough (and keeps the suite short): the first DANCE point
    target = root / "work/checkpoints/c3d/aap/dance_0.pt"
    log = root / "work/logs/train_aap_c3d_dance_0.log"
    log.unlink()
    proc = run([*SNAKE, str(target), "-R", "train_aap", "--rerun-triggers", "mtime",
                "--cores", "2", *smoke_args(root, str(extra))], timeout=1800)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "resuming" not in log.read_text() and "epoch" in log.read_text()
    states = list((root / "work/checkpoints/c3d/aap/dance_0").glob("run-*"))
    assert len(states) == 2                      # the old config's resume point kept beside


def test_output_folders_with_a_space_work_and_nothing_lands_outside(tmp_path):
    # Before, `tee {log}` was unquoted: every job failed and wrote a stray file named after
    # the part of the log path before the space.
    root = tmp_path / "with space"
    before = set(REPO.iterdir())
    target = f"{root}/work/data/synthetic/manifest.json"
    proc = run([*SNAKE, "--cores", "2", *smoke_args(root), "--", target], timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Path(target).exists()
    assert list((root / "work/logs").rglob("*.log")), "the step's log was not written"
    assert set(REPO.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["with space"]
