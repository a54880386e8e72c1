"""The README's numbers, rendered from the committed results so that they cannot drift.

    python scripts/readme_results.py --check     # exit 1 when a block differs from results/
    python scripts/readme_results.py --write     # rewrite the blocks in README.md

Every number the README quotes from ``results/`` sits between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->`` and is rendered here from the file it comes from:

* ``claims`` — ``results/claims.csv``: one row per claim and model (paper value, measured
  value, verdict, where it was measured);
* ``run_times`` — ``results/run_times.csv`` (``scripts/stage_times.py`` on the reference
  run's Snakemake log): per stage, jobs and wall time;
* ``reference`` — ``results/provenance.json``: the commit, host and date of the run.

The README's prose carries no other number from ``results/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- results:(\w+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _num(v: str, spec: str = ".3g") -> str:
    return "—" if v in ("", None) else format(float(v), spec)


def claims(results: Path) -> str:
    lines = ["| claim | model | paper | measured | verdict | measured on |",
             "|---|---|---|---|---|---|"]
    for r in _csv(results / "claims.csv"):
        measured = ("—" if r["measured_value"] in ("", None) else
                    f"{_num(r['measured_value'])} {r['unit'].split(' (')[0]}")
        lines.append(f"| `{r['claim_id']}` | {r['model']} | {_num(r['paper_value'])} | "
                     f"{measured} | **{r['verdict']}** | {r['device']} |")
    return "\n".join(lines) + "\n"


def run_times(results: Path) -> str:
    lines = ["| stage (`workflow/rules/<stage>.smk`) | jobs | time of its jobs | span "
             "(first start to last finish) | longest job |", "|---|---|---|---|---|"]
    for r in _csv(results / "run_times.csv"):
        longest = ("—" if not r["longest_job_rule"] else
                   f"{float(r['longest_job_minutes']):.1f} min (`{r['longest_job_rule']}`)")
        name = "**total**" if r["stage"] == "total" else r["stage"]
        lines.append(f"| {name} | {r['jobs']} | {float(r['job_minutes_sum']):.1f} min | "
                     f"{float(r['span_minutes']):.1f} min | {longest} |")
    return "\n".join(lines) + "\n"


def reference(results: Path) -> str:
    prov = json.loads((results / "provenance.json").read_text())
    rep = prov["reproducible"]
    code = rep["code"]
    cpu = rep["cpu"]
    return (f"Code `{code['commit'][:7]}`{' (with local changes)' if code.get('dirty') else ''}"
            f", {cpu['model']} ({cpu['usable_cpus']} usable CPUs, {cpu['torch_threads']} "
            f"torch threads), torch {rep['packages']['torch']}, written "
            f"{prov['run']['date'][:10]}.\n")


RENDER = {"claims": claims, "run_times": run_times, "reference": reference}


def render(text: str, results: Path) -> str:
    def block(m: re.Match) -> str:
        name = m.group(2)
        if name not in RENDER:
            raise SystemExit(f"README block results:{name} is unknown; known: "
                             f"{', '.join(RENDER)}")
        return m.group(1) + RENDER[name](results) + m.group(4)

    return BLOCK.sub(block, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    p.add_argument("--readme", type=Path, default=REPO / "README.md")
    p.add_argument("--results", type=Path, default=REPO / "results")
    args = p.parse_args(argv)
    text = args.readme.read_text()
    new = render(text, args.results)
    if args.write:
        args.readme.write_text(new)
        return 0
    if new != text:
        print(f"{args.readme}: the numbers quoted from {args.results} differ from the files; "
              f"run `python scripts/readme_results.py --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
