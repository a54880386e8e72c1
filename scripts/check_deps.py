"""Fail when a third-party module imported under src/, tests/, scripts/ or workflow/ is not
declared directly in pyproject.toml.

deptry does the checking (its rules and ignores are in pyproject.toml, [tool.deptry]). It
reads only .py files, so the workflow's Snakefile and rule files are first translated to
Python by Snakemake's own parser (`snakemake --print-compilation`), the authority on what
Python a .smk file runs. Usage: python scripts/check_deps.py [REPO]   (default: this checkout)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def workflow_files(repo: Path) -> list[Path]:
    """The Snakefile and every rule file under workflow/."""
    return [repo / "Snakefile", *sorted((repo / "workflow").rglob("*.smk"))]


def compile_workflow(repo: Path, out: Path) -> None:
    """Write each workflow file, translated to Python, to out/workflow/<its path>.py."""

    def compile_one(smk: Path) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "-s", str(smk), "--print-compilation"],
            cwd=out, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"check_deps: Snakemake could not parse {smk}:\n"
                             f"{proc.stderr[-2000:]}")
        target = out / "workflow" / (str(smk.relative_to(repo)) + ".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(proc.stdout)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(compile_one, workflow_files(repo)))


def check(repo: Path) -> int:
    """Run deptry over src/, tests/, scripts/ and the compiled workflow; return its status."""
    with tempfile.TemporaryDirectory(prefix="dance-deps-") as tmp:
        compiled = Path(tmp)
        compile_workflow(repo, compiled)
        proc = subprocess.run(
            [sys.executable, "-m", "deptry",
             *[d for d in ("src", "tests", "scripts") if (repo / d).is_dir()], str(compiled / "workflow"),
             "--config", "pyproject.toml", "--no-ansi"],
            cwd=repo, capture_output=True, text=True)
        # A finding in a compiled file names the workflow file it came from.
        report = (proc.stdout + proc.stderr).replace(f"{compiled}/workflow/", "")
    print(report.strip())
    return proc.returncode


if __name__ == "__main__":
    sys.exit(check(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE))
