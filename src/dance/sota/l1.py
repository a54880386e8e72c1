"""Static L1-norm filter pruning (Li et al., ICLR 2017), fine-tuned — a comparison baseline.

Surgery (:func:`l1_prune`) uses Torch-Pruning's dependency graph, so every layer that reads
a pruned conv's output is cut to match (BatchNorm, the next conv's input channels, C3D's
fc6 input through pool5/flatten, and R3D-18's residual stream: convs whose outputs are
added together form one group and lose the same channels). Choices (ours):

* which filters: in every conv except the first (the clip's stem, which DANCE never prunes
  either) the share `ratio` of output channels with the smallest L1 filter norm is removed;
  a coupled group ranks its channels by the *sum* of the L1 norms of all its filters (the
  convs writing that channel), as Li et al. do for residual stages. Linear layers keep their
  outputs (only fc6's input shrinks with conv5b). A group that holds the first conv (R3D-18's
  layer1 residual stream) is left whole;
* kept counts are rounded to a multiple of ``sota.l1.round_to`` (Torch-Pruning's `round_to`);
* the result is a real, smaller dense network: it is saved as a state_dict and rebuilt by
  re-running the (deterministic) surgery on the baseline before loading the weights.

Fine-tuning: from the baseline checkpoint, ``sota.epochs`` epochs (``ava.epochs`` when
unset) with AVA's schedule (``sota.l1.lr`` may replace the peak LR), through :func:`dance.train.stage.train_stage`
(stages ``l1_mild`` / ``l1_aggressive``), so resume, history and checkpoints are the
training loop's.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from dance import checkpoint
from dance.errors import ConfigError
from dance.models.trained import load_trained, model_meta
from dance.nn.probe import example_input
from dance.paths import Paths
from dance.plan import L1_LEVELS, l1_stage


def check_level(level: str) -> None:
    if level not in L1_LEVELS:
        raise ConfigError(f"unknown L1 pruning level {level!r}; allowed: {', '.join(L1_LEVELS)}")


def stage_name(level: str) -> str:
    """Training stage (and checkpoint name) of a pruning level: ``l1_mild``, ``l1_aggressive``."""
    check_level(level)
    return l1_stage(level)


def _filter_l1_importance():
    import torch_pruning as tp

    class FilterL1(tp.importance.Importance):
        """Per channel of a group: Σ over the group's convs writing it of the filter's L1
        norm (input-side weights of the consumers do not count — Li et al.'s criterion)."""

        @torch.no_grad()
        def __call__(self, group):
            score = None
            for i, (dep, idxs) in enumerate(group):
                layer = dep.layer
                if not (isinstance(layer, nn.Conv3d)
                        and dep.pruning_fn == tp.pruner.function.prune_conv_out_channels):
                    continue
                norms = layer.weight.data[idxs].flatten(1).abs().sum(1).double()
                root = torch.tensor(group[i].root_idxs)
                if score is None:
                    score = torch.zeros(len(group[0][1]), dtype=torch.float64)
                score.scatter_add_(0, root, norms)
            return score

    return FilterL1()


def l1_prune(model: nn.Module, ratio: float, round_to: int = 1) -> nn.Module:
    """A pruned copy of `model` (module docstring); `model` is not changed.

    `ratio` is the share of output channels removed per pruned conv (0 = a copy with the
    same structure and weights).
    """
    import torch_pruning as tp

    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"L1 pruning ratio must be in [0, 1), got {ratio}")
    net = copy.deepcopy(model).eval()
    example = example_input(net, net.clip_shape)
    ignored = [net.first_conv, *(m for m in net.modules() if isinstance(m, nn.Linear))]
    pruner = tp.pruner.MagnitudePruner(net, example, importance=_filter_l1_importance(),
                                       pruning_ratio=ratio, ignored_layers=ignored,
                                       round_to=round_to if round_to > 1 else None)
    if ratio > 0:
        pruner.step()
    return net


def kept_channels(model: nn.Module) -> dict[str, int]:
    """Output channels of every conv (the pruned net's plan, for logs and tests)."""
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv3d)}


def structure(l1: dict, level: str, baseline: nn.Module) -> nn.Module:
    """The level's pruned net (ratio and rounding from the ``sota.l1`` section `l1`) with
    the weights of the trained `baseline` (the fine-tuning start)."""
    check_level(level)
    return l1_prune(baseline, l1[level], l1["round_to"])


def train_l1(cfg: dict, model_name: str, level: str) -> Path:
    """Prune the baseline at `level`'s ratio and fine-tune it with AVA's schedule for
    ``sota.epochs`` epochs (AVA's when unset), at ``sota.l1.lr`` if set; returns the
    checkpoint."""
    from dance.identity import finetune_settings
    from dance.train.ava import finetune_schedule
    from dance.train.stage import train_stage

    sched = finetune_schedule(cfg["train"], finetune_settings(cfg, "sota.l1.lr"))
    return train_stage(cfg, model_name, stage_name(level), sched, init=lambda n: structure(
        cfg["sota"]["l1"], level, load_trained(cfg, model_name, "baseline", n)))


def load_l1(cfg: dict, model_name: str, level: str, num_classes: int) -> nn.Module:
    """The fine-tuned pruned net of `level`, checked against the config."""
    stage = stage_name(level)
    path = Paths(cfg).checkpoint(model_name, stage)
    payload = checkpoint.load(path, expect=model_meta(cfg, model_name, stage, num_classes))
    net = structure(cfg["sota"]["l1"], level,
                    load_trained(cfg, model_name, "baseline", num_classes))
    net.load_state_dict(payload["model"])
    return net.eval()
