"""`python -m dance <command>`: every workflow step, runnable on its own.

Each command takes `--config FILE` (layered over workflow/config/default.yaml, as the
workflow's --configfile is) and any number of `--set key.sub=value` overrides, validates
the result against the schema, and calls one function of the package. The commands live in
:mod:`dance.commands`, one module per stage. Errors caused by input print one line naming the key or file and
exit with status 2; nothing is left half-written (all outputs are atomic).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from dance import config as config_mod
from dance.commands.registry import COMMANDS
from dance.errors import ConfigError, DanceError

# one module per stage, each registering its commands when imported (in this order: --help)
STAGES = ("data", "train", "measure", "aap", "sota", "devices", "report")
for _stage in STAGES:
    importlib.import_module(f"dance.commands.{_stage}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dance", description=__doc__.split("\n")[0])
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_args, _) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", type=Path, default=None,
                         help="config YAML/JSON, merged over workflow/config/default.yaml")
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
        if isinstance(getattr(args, "model", None), str):
            from dance.models.registry import MODELS

            if args.model not in MODELS:
                raise ConfigError(f"unknown model {args.model!r} (--model); allowed: "
                                  f"{', '.join(sorted(MODELS))}")
        if args.command != "validate-config":
            from dance.io import check_output_folder

            for key in ("results_dir", "figures_dir", "work_dir"):
                check_output_folder(cfg[key], key)
        COMMANDS[args.command][2](cfg, args)
    except DanceError as exc:
        print(f"dance {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dance {args.command}: interrupted; finished outputs are kept, re-run to resume",
              file=sys.stderr)
        return 130
    return 0
