"""The command registry of ``python -m dance``: each stage's module in
:mod:`dance.commands` registers its commands with :func:`command`; :mod:`dance.cli` builds
the parser from :data:`COMMANDS` and runs one."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Command = Callable[[dict, argparse.Namespace], object]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str, help: str, args: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    def register(fn: Command) -> Command:
        COMMANDS[name] = (help, args, fn)
        return fn
    return register


def bench_families() -> None:
    """Fill the bench's variant registry with the families of the upper layers (the AAP
    points ``dance@K``, the compared networks ``l1@…``/``selector@…``). The CLI is the
    composition root: :mod:`dance.measure.variants` never imports them itself."""
    from dance.aap import bench as _aap  # noqa: F401
    from dance.sota import bench as _sota  # noqa: F401


def model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model name from the registry (c3d, r3d18)")


def model_stage_args(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    p.add_argument("--stage", default="baseline", help="training stage whose checkpoint to use")


def model_variants_args(p: argparse.ArgumentParser) -> None:
    model_arg(p)
    p.add_argument("--variants", default=None,
                   help="comma list (default: dense, dense-floor where timed, and every "
                        "operating point the config trains for this stage)")
