"""Wall time of each stage of a Snakemake run, read from its log.

    python scripts/stage_times.py .snakemake/log/<run>.snakemake.log [...] [--out results/run_times.csv]

A job starts at the timestamp line just before its ``rule``/``localrule`` line and ends at
the one just before its ``Finished jobid: N`` line. A rule's stage is the rule file that
defines it (``workflow/rules/<stage>.smk``). Per stage: jobs, the sum of their wall times,
the longest job, and the stage's span (first start to last finish; jobs of different stages
overlap when they run at the same time). The last row, ``total``, spans the whole run.
A run that was interrupted and resumed has one log per part: pass them all; a span is then
the sum of its spans within each log, so the pause between the parts is not counted.
Printed as a Markdown table (the README's "Run times" table) and, with ``--out``, written
as CSV.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")
COLUMNS = ["stage", "jobs", "job_minutes_sum", "longest_job_minutes", "longest_job_rule",
           "span_minutes"]


def rule_stages(rules_dir: Path = REPO / "workflow" / "rules") -> dict[str, str]:
    """Rule name → the stem of the .smk file defining it (``rule name:``, or ``use rule
    _template as name with:`` for a rule made from a job template)."""
    out = {}
    for path in sorted(rules_dir.glob("*.smk")):
        for line in path.read_text().splitlines():
            m = re.match(r"^(?:rule|use rule \w+ as) (\w+)(?::| with:)", line)
            if m:
                out[m.group(1)] = path.stem
    return out


def jobs(log: Path, part: int = 0) -> list[dict]:
    """Every finished job of the log: rule, start, end (datetimes), part (the log's index
    among the logs of one resumed run)."""
    stamp = pending = None
    started: dict[str, tuple[str, datetime]] = {}
    out = []
    for line in log.read_text().splitlines():
        if m := STAMP.match(line):
            stamp = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
        elif m := START.match(line):
            pending = (m.group(1), stamp)
        elif (m := JOBID.match(line)) and pending is not None:
            started[m.group(1)] = pending
            pending = None
        elif m := FINISHED.match(line):
            rule, begin = started.pop(m.group(1), (m.group(2), None))
            if begin is not None:
                out.append({"rule": rule, "start": begin, "end": stamp, "part": part})
    return out


def span_minutes(js: list[dict]) -> float:
    """First start to last finish, summed over the parts of a resumed run."""
    seconds = 0.0
    for part in {j.get("part", 0) for j in js}:
        own = [j for j in js if j.get("part", 0) == part]
        seconds += (max(j["end"] for j in own) - min(j["start"] for j in own)).total_seconds()
    return round(seconds / 60, 1)


def stage_rows(found: list[dict], stages: dict[str, str]) -> list[dict]:
    by_stage: dict[str, list[dict]] = {}
    for job in found:
        by_stage.setdefault(stages.get(job["rule"], "other"), []).append(job)
    rows = []
    for stage in sorted(by_stage, key=lambda s: min(j["start"] for j in by_stage[s])):
        js = by_stage[stage]
        longest = max(js, key=lambda j: j["end"] - j["start"])
        rows.append({
            "stage": stage, "jobs": len(js),
            "job_minutes_sum": round(sum((j["end"] - j["start"]).total_seconds()
                                         for j in js) / 60, 1),
            "longest_job_minutes": round((longest["end"] - longest["start"]).total_seconds()
                                         / 60, 1),
            "longest_job_rule": longest["rule"],
            "span_minutes": span_minutes(js)})
    if found:
        rows.append({"stage": "total", "jobs": len(found),
                     "job_minutes_sum": round(sum((j["end"] - j["start"]).total_seconds()
                                                  for j in found) / 60, 1),
                     "longest_job_minutes": None, "longest_job_rule": None,
                     "span_minutes": span_minutes(found)})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| stage (rule file) | jobs | wall time of the stage | sum over its jobs | "
             "longest job |", "|---|---|---|---|---|"]
    for r in rows:
        longest = ("—" if r["longest_job_rule"] is None else
                   f"{r['longest_job_minutes']:.1f} min (`{r['longest_job_rule']}`)")
        lines.append(f"| {r['stage']} | {r['jobs']} | {r['span_minutes']:.1f} min | "
                     f"{r['job_minutes_sum']:.1f} min | {longest} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logs", type=Path, nargs="+", help="the run's log(s), in run order")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    found = [j for i, log in enumerate(args.logs) for j in jobs(log, i)]
    rows = stage_rows(found, rule_stages())
    if not rows:
        print(f"{', '.join(map(str, args.logs))}: no finished job", file=sys.stderr)
        return 1
    if args.out:
        with open(args.out, "w", newline="") as fh:
            w = csv.DictWriter(fh, COLUMNS)
            w.writeheader()
            w.writerows(rows)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
