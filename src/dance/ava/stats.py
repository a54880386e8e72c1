"""How sparse the activations AAP will prune are, before and after AVA (T1, F5).

For each stage's network, on the test split (eval mode, no gradient), every site's input is
reduced to its frame/channel/feature magnitude profiles (:mod:`dance.ava.profiles`); we
report, per layer and dimension, the mean over clips of the Hoyer sparsity and of the
normalised variance. A dimension with a single entry at some layer (e.g. T = 1 deep in C3D
on 8-frame clips) has no distribution and is left out.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dance import runtime
from dance.ava.loss import ActivationRecorder
from dance.ava.profiles import DIMS, hoyer, magnitude_profiles, normalised_variance
from dance.data.dataset import ClipDataset, open_split
from dance.evaluate.classify import summarise
from dance.io import read_json, write_csv, write_json
from dance.models.trained import load_trained
from dance.paths import Paths

PROFILE_CLIPS = 4  # test clips whose sorted profiles are written for figure F5


def _profile_layers(names: list[str]) -> list[str]:
    """First, middle and last site: the shallow, intermediate and deep view of F5."""
    picks = [names[0], names[len(names) // 2], names[-1]]
    return list(dict.fromkeys(picks))


@torch.no_grad()
def stage_sparsity(model: torch.nn.Module, dataset: ClipDataset, batch_size: int,
                   device: torch.device, profile_clips: int = PROFILE_CLIPS,
                   ) -> tuple[list[dict], list[dict], torch.Tensor]:
    """(per-layer rows, sorted-profile rows, logits) of `model` over `dataset`.

    Layer rows: layer, dim, hoyer, norm_variance (means over clips), n (clips), length
    (profile entries). Profile rows: clip, layer, dim, rank (0 = largest), value.
    """
    model.eval().to(device)
    names = [name for name, _, _ in model.prunable_convs()]
    figure_layers = set(_profile_layers(names))
    sums: dict[tuple[str, str], list[float]] = {}
    profile_rows: list[dict] = []
    logits = []
    with ActivationRecorder(model) as rec:
        for x, _, idx in dataset.batches(batch_size):
            logits.append(model(x.to(device)).float().cpu())
            for name, a in zip(rec.names, rec.activations, strict=True):
                for dim, p in zip(DIMS, magnitude_profiles(a.float()), strict=True):
                    if p.shape[1] < 2:
                        continue
                    acc = sums.setdefault((name, dim), [0.0, 0.0, 0, p.shape[1]])
                    acc[0] += float(hoyer(p).double().sum())
                    acc[1] += float(normalised_variance(p).double().sum())
                    acc[2] += len(p)
                    if name not in figure_layers:
                        continue
                    for row, clip in enumerate(idx.tolist()):
                        if clip >= profile_clips:
                            continue
                        ranked = torch.sort(p[row].cpu(), descending=True).values
                        profile_rows += [{"clip": clip, "layer": name, "dim": dim, "rank": r,
                                          "value": float(v)} for r, v in enumerate(ranked)]
    layer_rows = [{"layer": name, "dim": dim, "hoyer": acc[0] / acc[2],
                   "norm_variance": acc[1] / acc[2], "n": acc[2], "length": acc[3]}
                  for name in names for dim in DIMS
                  if (acc := sums.get((name, dim))) is not None]
    return layer_rows, profile_rows, torch.cat(logits)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def sparsity_stats(cfg: dict, model_name: str,
                   stages: tuple[str, ...] = ("baseline", "ava")) -> Path:
    """Write ava_sparsity.csv, ava_profiles.csv and ava_summary.json for `model_name`.

    The summary compares the first stage ("before") with the last ("after"): per dimension,
    the mean over layers of the per-layer mean Hoyer sparsity, and their ratio (gain).
    Top-1 comes from the stage's evaluation JSON when it exists, else from this pass.
    """
    device = runtime.setup(cfg)
    paths = Paths(cfg)
    test_set = open_split(cfg, "test")
    batch_size = cfg["train"]["eval_batch_size"]
    sparsity, profiles, top1, top1_source = [], [], {}, {}
    per_dim: dict[str, dict[str, dict[str, float]]] = {d: {} for d in DIMS}
    for stage in stages:
        model = load_trained(cfg, model_name, stage, test_set.num_classes)
        layer_rows, profile_rows, logits = stage_sparsity(model, test_set, batch_size, device)
        sparsity += [{"model": model_name, "stage": stage, **r} for r in layer_rows]
        profiles += [{"stage": stage, **r} for r in profile_rows]
        for dim in DIMS:
            rows = [r for r in layer_rows if r["dim"] == dim]
            per_dim[dim][stage] = {"hoyer": _mean([r["hoyer"] for r in rows]),
                                   "norm_variance": _mean([r["norm_variance"] for r in rows])}
        eval_json = paths.evaluation(model_name, stage)
        if eval_json.exists():
            top1[stage], top1_source[stage] = float(read_json(eval_json)["top1"]), "evaluation"
        else:
            top1[stage] = summarise(logits, test_set.labels, test_set.classes)["top1"]
            top1_source[stage] = "computed"

    before, after = stages[0], stages[-1]
    dims = {}
    for dim, by_stage in per_dim.items():
        h0, h1 = by_stage[before]["hoyer"], by_stage[after]["hoyer"]
        dims[dim] = {"hoyer_before": h0, "hoyer_after": h1,
                     "hoyer_gain": h1 / h0 if h0 > 0 else None,
                     "norm_variance_before": by_stage[before]["norm_variance"],
                     "norm_variance_after": by_stage[after]["norm_variance"]}
    summary = {"model": model_name, "split": "test", "clips": len(test_set),
               "before_stage": before, "after_stage": after, "top1": top1,
               "top1_source": top1_source, "dims": dims}
    write_csv(paths.ava_sparsity(model_name), sparsity)
    write_csv(paths.ava_profiles(model_name), profiles,
              fieldnames=["stage", "clip", "layer", "dim", "rank", "value"])
    write_json(paths.ava_summary(model_name), summary)
    return paths.ava_summary(model_name)
