"""Commands: paper tables, figures, claims, provenance."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from dance.commands.registry import command


# --- paper tables, figures, claims, provenance (dance.report) ----------------------------
def _artifact_arg(kind: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        from dance.report.registry import ARTIFACTS

        ids = [a.id for a in ARTIFACTS.values() if a.kind == kind]
        p.add_argument("ids", nargs="+", metavar="ID",
                       help=f"{kind} id(s): {', '.join(ids)}, or 'all'")
    return add


def _build_artifacts(cfg: dict, ids: list[str], kind: str) -> None:
    from dance.report.registry import ARTIFACTS, build, get

    if [i.lower() for i in ids] == ["all"]:
        ids = [a.id for a in ARTIFACTS.values() if a.kind == kind]
    for artifact_id in ids:
        if get(artifact_id).kind != kind:
            from dance.errors import DanceError

            raise DanceError(f"{artifact_id} is not a {kind}")
        for path in build(cfg, artifact_id):
            print(path)


@command("table", "paper table(s) T1–T4 as CSV, Markdown and LaTeX from the result files",
         _artifact_arg("table"))
def _table(cfg: dict, args: argparse.Namespace) -> None:
    _build_artifacts(cfg, args.ids, "table")


@command("figure", "paper figure(s) F1–F10 as PNG and PDF (+ CSV of the data) from the result "
         "files", _artifact_arg("figure"))
def _figure(cfg: dict, args: argparse.Namespace) -> None:
    _build_artifacts(cfg, args.ids, "figure")


@command("claims", "check every claim of the paper against the results: claims.csv")
def _claims(cfg: dict, args: argparse.Namespace) -> None:
    from dance.report.claims import format_claims, write_claims

    path, rows = write_claims(cfg)
    print(format_claims(rows))
    print(path)


@command("provenance", "record code commit, config fingerprint, packages, CPU: provenance.json")
def _provenance(cfg: dict, args: argparse.Namespace) -> None:
    from dance.report.provenance import write_provenance

    print(write_provenance(cfg))
