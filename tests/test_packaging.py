"""Install metadata: the torch pin, no torchvision, conda env == pyproject."""

from __future__ import annotations

import shutil
import subprocess
import sys

import tomllib
import yaml

from conftest import REPO


def _pyproject_deps() -> set[str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    return set(meta["dependencies"]) | set(extras["test"]) | set(extras["gpu"])


def _conda_pip_deps() -> set[str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return set(pip)


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    assert _conda_pip_deps() == _pyproject_deps()


def test_torch_is_pinned_exactly_and_torchvision_absent():
    deps = _pyproject_deps()
    assert "torch==2.13.0" in deps
    assert not any(d.startswith("torchvision") for d in deps)


# --- every import declared (issue 18) -------------------------------------------------------

def _check_deps(repo):
    """scripts/check_deps.py (deptry over src/, tests/ and the compiled workflow) on `repo`."""
    return subprocess.run([sys.executable, str(REPO / "scripts/check_deps.py"), str(repo)],
                          capture_output=True, text=True, timeout=300)


def _tree(tmp_path, *, drop: str | None = None, rule_file: str | None = None):
    """A small project: this checkout's pyproject.toml (less the dependency `drop`) and src/,
    a one-rule Snakefile, and optionally a rule file with the text `rule_file`."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "src", repo / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    text = (REPO / "pyproject.toml").read_text()
    if drop is not None:
        kept = [ln for ln in text.splitlines() if not ln.strip().startswith(f'"{drop}')]
        assert len(kept) < len(text.splitlines()), f"{drop} is not declared"
        text = "\n".join(kept) + "\n"
    (repo / "pyproject.toml").write_text(text)
    (repo / "Snakefile").write_text('rule a:\n    shell: "true"\n')
    if rule_file is not None:
        (repo / "workflow/rules").mkdir(parents=True)
        (repo / "workflow/rules/extra.smk").write_text(rule_file)
    return repo


def test_every_third_party_import_under_src_tests_and_workflow_is_declared():
    proc = _check_deps(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_undeclared_import_fails_the_check_naming_the_module_and_the_file(tmp_path):
    # The bug of issue 18: scipy was imported by aap/evaluate.py but declared nowhere.
    proc = _check_deps(_tree(tmp_path, drop="scipy"))
    assert proc.returncode != 0
    finding = next(ln for ln in proc.stdout.splitlines() if "'scipy'" in ln)
    # DEP001 where nothing installs scipy, DEP003 where another package pulls it in.
    assert "src/dance/aap/evaluate.py" in finding and ("DEP001" in finding or "DEP003" in finding)


def test_an_undeclared_import_in_a_rule_file_fails_the_check(tmp_path):
    rules = 'import tabulate\n\nrule b:\n    shell: "true"\n'
    proc = _check_deps(_tree(tmp_path, rule_file=rules))
    assert proc.returncode != 0
    finding = next(ln for ln in proc.stdout.splitlines() if "'tabulate'" in ln)
    assert "workflow/rules/extra.smk" in finding


# --- README commands == CI (issue 18) -------------------------------------------------------

def test_ci_runs_the_readme_commands_in_a_clean_venv():
    main_cmd, test_cmd = (
        subprocess.run([sys.executable, str(REPO / "scripts/readme_commands.py"), n],
                       capture_output=True, text=True, check=True).stdout.strip()
        for n in ("1", "2"))
    assert main_cmd.endswith("snakemake --cores all") and "pip install -e ." in main_cmd
    assert test_cmd.endswith("python -m pytest") and '".[test]"' in test_cmd
    ci = (REPO / ".ci/run").read_text()
    assert "python3 -m venv" in ci and "system-site-packages" not in ci
    for number in ("1", "2"):
        assert f"scripts/readme_commands.py {number}" in ci
    assert "--configfile workflow/config/smoke.yaml" in ci and "pip check" in ci


# --- README numbers == results (issue 21.1) ---------------------------------------------------

def _readme_results(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts/readme_results.py"), *args],
                          capture_output=True, text=True, timeout=60)


def test_the_readme_quotes_the_committed_results_exactly():
    res = _readme_results("--check")
    assert res.returncode == 0, res.stderr
    text = (REPO / "README.md").read_text()
    for block in ("reference", "claims", "run_times"):
        assert f"<!-- results:{block} -->" in text
    assert len(text.encode()) <= 12 * 1024, "the README is meant to be read in five minutes"


def test_a_number_that_differs_from_results_fails_the_readme_check(tmp_path):
    import shutil

    results = tmp_path / "results"
    results.mkdir()
    for name in ("claims.csv", "provenance.json"):
        shutil.copy(REPO / "results" / name, results / name)
    (results / "run_times.csv").write_text(
        "stage,jobs,job_minutes_sum,longest_job_minutes,longest_job_rule,span_minutes\n"
        "data,2,0.5,0.4,prepare_data,0.6\ntotal,2,0.5,,,0.6\n")
    readme = tmp_path / "README.md"
    readme.write_text((REPO / "README.md").read_text()
                      + "\n<!-- results:run_times -->\n<!-- /results:run_times -->\n")
    assert _readme_results("--write", "--readme", str(readme), "--results",
                           str(results)).returncode == 0
    assert "| data | 2 | 0.5 min | 0.6 min | 0.4 min (`prepare_data`) |" in readme.read_text()
    assert _readme_results("--check", "--readme", str(readme), "--results",
                           str(results)).returncode == 0
    claims = (results / "claims.csv").read_text().splitlines()
    first = claims[1].split(",")
    assert first[4] == ""                                   # not measured: add a value
    first[4] = "9.99"
    (results / "claims.csv").write_text("\n".join([claims[0], ",".join(first), *claims[2:]])
                                        + "\n")
    res = _readme_results("--check", "--readme", str(readme), "--results", str(results))
    assert res.returncode == 1 and "differ from the files" in res.stderr
