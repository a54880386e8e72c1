"""`python -m dance <command>`: every workflow step, runnable on its own.

Each command takes `--config FILE` (default: workflow/config/default.yaml) and any number of
`--set key.sub=value` overrides, validates the result against the schema, and calls one
function of the package. Errors caused by input print one line naming the key or file and
exit with status 2; nothing is left half-written (all outputs are atomic).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from dance import config as config_mod
from dance.errors import DanceError

Command = Callable[[dict, argparse.Namespace], object]
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] = {}


def command(name: str, help: str, args: Callable[[argparse.ArgumentParser], None] = lambda p: None):
    def register(fn: Command) -> Command:
        _COMMANDS[name] = (help, args, fn)
        return fn
    return register


def _model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="model name from the registry (c3d, r3d18)")


def _model_stage_args(p: argparse.ArgumentParser) -> None:
    _model_arg(p)
    p.add_argument("--stage", default="baseline", help="training stage whose checkpoint to use")


@command("validate-config", "validate a config and print it with every default filled in")
def _validate(cfg: dict, args: argparse.Namespace) -> None:
    import yaml

    print(yaml.safe_dump(cfg, sort_keys=False), end="")


@command("prepare-data", "generate or decode the configured data set into cached shards")
def _prepare(cfg: dict, args: argparse.Namespace) -> None:
    from dance.data import prepare

    print(prepare(cfg, progress=cfg["train"]["progress"]))


@command("plot-samples", "figure: a grid of sample frames per class of the data set")
def _plot_samples(cfg: dict, args: argparse.Namespace) -> None:
    from dance.data.samples_figure import plot_samples
    from dance.paths import Paths

    paths = Paths(cfg)
    plot_samples(paths.data_dir, paths.figure("dataset_samples", "png"),
                 paths.figure("dataset_samples", "pdf"))


@command("train-baseline", "train a dense backbone from scratch (resumable)", _model_arg)
def _train_baseline(cfg: dict, args: argparse.Namespace) -> None:
    from dance.train.baseline import train_baseline

    print(train_baseline(cfg, args.model))


@command("evaluate", "test-split metrics of a trained stage", _model_stage_args)
def _evaluate(cfg: dict, args: argparse.Namespace) -> None:
    from dance.evaluate.run import evaluate_stage

    print(evaluate_stage(cfg, args.model, args.stage))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dance", description=__doc__.split("\n")[0])
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_args, _) in _COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", type=Path, default=None,
                         help="config YAML/JSON (default: workflow/config/default.yaml)")
        sub.add_argument("--set", dest="overrides", action="append", default=[],
                         metavar="KEY=VALUE", help="override a config key, e.g. train.epochs=2")
        add_args(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides: dict = {}
        for text in args.overrides:
            overrides = config_mod.merge(overrides, config_mod.parse_override(text))
        cfg = config_mod.load(args.config, overrides)
        _COMMANDS[args.command][2](cfg, args)
    except DanceError as exc:
        print(f"dance {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dance {args.command}: interrupted; finished outputs are kept, re-run to resume",
              file=sys.stderr)
        return 130
    return 0
