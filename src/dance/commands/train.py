"""Commands: training and evaluating the backbones (baseline, AVA)."""

from __future__ import annotations

import argparse

from dance.commands.registry import command, model_arg, model_stage_args


@command("train-baseline", "train a dense backbone from scratch (resumable)", model_arg)
def _train_baseline(cfg: dict, args: argparse.Namespace) -> None:
    from dance.train.baseline import train_baseline

    print(train_baseline(cfg, args.model))


@command("train-ava", "AVA fine-tuning of a trained baseline (resumable)", model_arg)
def _train_ava(cfg: dict, args: argparse.Namespace) -> None:
    from dance.train.ava import train_ava

    print(train_ava(cfg, args.model))


@command("ava-stats", "frame/channel/feature sparsity of the baseline vs AVA on the test split",
         model_arg)
def _ava_stats(cfg: dict, args: argparse.Namespace) -> None:
    from dance.ava.stats import sparsity_stats

    print(sparsity_stats(cfg, args.model))


@command("evaluate", "test-split metrics of a trained stage", model_stage_args)
def _evaluate(cfg: dict, args: argparse.Namespace) -> None:
    from dance.evaluate.run import evaluate_stage

    print(evaluate_stage(cfg, args.model, args.stage))
