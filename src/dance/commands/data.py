"""Commands: data sets: validate the config, prepare the data, sample figure."""

from __future__ import annotations

import argparse

from dance.commands.registry import command


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
    from dance.paths import Paths
    from dance.report.figures.samples import plot_samples

    paths = Paths(cfg)
    plot_samples(paths.data_dir, paths.figure("dataset_samples", "png"),
                 paths.figure("dataset_samples", "pdf"))
