"""Per-layer latency of the pruned execution, measured on the machine that runs it.

`python -m dance latency-table --model M` → ``Paths.latency_table(M)`` (CSV) + ``.json``
(measurement conditions). A latency-aware controller (``aap.cost: latency``) is trained
against this table instead of MAC counts: the cost it pays is what this hardware pays
(latency-aware dynamic networks, LASNet/LAUDNet; hardware-aware pruning, HALP).

What is timed: the network as the bench runs it (``bench.prepare``: BatchNorm folded,
padding-only taps dropped; convs through :func:`dance.nn.conv3d`; the bench's memory
format). Its weights are random (latency does not depend on them), so the table needs no
trained checkpoint. For every prunable conv, its input is captured from one forward pass of
a random non-negative clip. The conv's pruned execution (:class:`~dance.aap.execute.PrunedConv`,
the path ``dance@K`` runs) is then timed at every grid point of keep shares, with fixed
decisions:

* frames — a contiguous run of round(share·T) frames in the middle of the clip (layers
  with fewer than ``min_frames`` input frames keep all of them, as the controller does);
* channels — round(share·C) channels rounded up to ``aap.channel_multiple``;
* features — a square blob of ≈ share·H·W positions in the middle of the map (the shape
  the trained controllers keep: one compact blob around the actor).

Each layer's dense conv is timed in the same interleaved run
(:func:`dance.measure.latency.time_variants`, batch 1). So the table holds, beside the time
of each kept setting, its ratio to dense measured side by side. The grid's all-kept point
is the pruned path when it prunes nothing with the decision given. The same conv deciding
for itself at thresholds → 0 (every profile pass and keep rule runs, nothing is dropped) is
timed too, beside dense and the all-kept point in a run of its own with ``OVERHEAD_REPEATS``×
the repeats (``per_layer_overhead`` in the JSON): its excess over the all-kept point is the
per-conv decision overhead. The whole dense network and ``dense-floor`` (every prunable conv skipped) are
timed too. The floor is the time outside the prunable convs, which no pruning removes.

A device measures the same grid (:mod:`dance.devices.layer_table`: :func:`grid_point` gives
both tables their decisions, kept counts and MACs) and :class:`LatencyModel` reads either.
Why this module is long: the grid, its measurement here and the model that reads a measured
table (this host's or a device's) are one format, kept in one place.
"""

from __future__ import annotations

import copy
import itertools
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dance.aap.execute import PrunedConv
from dance.errors import ConfigError, DanceError
from dance.io import read_json, write_csv, write_json
from dance.measure.latency import environment, time_variants
from dance.measure.macs import batch_effective_macs
from dance.measure.variants import skip_prunable_convs, timed_network, timing_options
from dance.paths import Paths

OVERHEAD_REPEATS = 4          # × aap.latency_table.repeats for the decision overhead's run
DECIDE_TAU = (1e-6, 1e-6, 1e-6)     # > 0: every decision runs; keeps all but all-zero entries
ALL_KEPT = "1,1,1"
COLUMNS = ["model", "layer", "index", "in_channels", "in_frames", "height", "width",
           "frames_share", "channels_share", "features_share", "kept_frames",
           "kept_channels", "kept_features", "macs", "dense_macs", "median_ms", "p25_ms",
           "p75_ms", "dense_median_ms", "ratio_to_dense", "n"]


def grid_decision(in_shape: tuple[int, int, int, int], frames: float, channels: float,
                  features: float, channel_multiple: int = 1, min_frames: int = 4,
                  ) -> tuple[list[int] | None, Tensor | None, Tensor | None]:
    """The fixed decision of one grid point for a site input (C, T, H, W) (module
    docstring); None = all kept, in :class:`PrunedConv`'s decision format."""
    c, t, h, w = in_shape
    nf = t if t < min_frames else min(t, max(1, round(frames * t)))
    start = (t - nf) // 2
    fr = None if nf == t else list(range(start, start + nf))
    k = max(1, round(channels * c))
    if channel_multiple > 1:
        k = -(-k // channel_multiple) * channel_multiple
    ch = None if k >= c else torch.arange(k)
    side_h = min(h, max(1, round(h * features ** 0.5)))
    side_w = min(w, max(1, round(features * h * w / side_h)))
    fe = None
    if side_h * side_w < h * w:
        fe = torch.zeros(h, w)
        r0, c0 = (h - side_h) // 2, (w - side_w) // 2
        fe[r0:r0 + side_h, c0:c0 + side_w] = 1.0
    return fr, ch, fe


def table_grid(table: dict) -> list[tuple[float, float, float]]:
    """Every grid point (frames, channels, features shares) of `table`
    (``aap.latency_table``); ConfigError when an axis lacks the all-kept share 1.0."""
    for dim in ("frames", "channels", "features"):
        if 1.0 not in table[dim]:
            raise ConfigError(f"config key 'aap.latency_table.{dim}' is {table[dim]}: it must "
                              f"hold 1.0 (the all-kept point the other shares are read against)")
    return list(itertools.product(table["frames"], table["channels"], table["features"]))


def site_inputs(model: nn.Module, clip: Tensor) -> dict[str, Tensor]:
    """The input of every prunable conv on `clip` (one forward pass, forward pre-hooks)."""
    found: dict[str, Tensor] = {}
    hooks = []
    for name, _, conv in model.prunable_convs():
        hooks.append(conv.register_forward_pre_hook(
            lambda m, args, name=name: found.__setitem__(name, args[0].detach().clone(
                memory_format=torch.preserve_format))))
    try:
        with torch.inference_mode():
            model(clip)
    finally:
        for h in hooks:
            h.remove()
    return found


def _masks(decision: tuple, in_shape: tuple[int, int, int, int]) -> tuple[Tensor, ...]:
    from dance.aap.execute import masks_from_decision

    fm, cm, sm = masks_from_decision(in_shape, *decision)
    return fm[None], cm[None], sm[None]


def grid_point(conv: nn.Module, in_shape: tuple[int, int, int, int],
               shares: tuple[float, float, float], channel_multiple: int = 1,
               min_frames: int = 4) -> dict[str, Any]:
    """One grid point of a conv with site input `in_shape` (C, T, H, W): its fixed decision
    (:func:`grid_decision`), kept frames / channels / features and effective MACs, as the
    table's columns (the host's table and a device's, :mod:`dance.devices.layer_table`)."""
    d = grid_decision(in_shape, *shares, channel_multiple, min_frames)
    return {"decision": d,
            "kept_frames": in_shape[1] if d[0] is None else len(d[0]),
            "kept_channels": in_shape[0] if d[1] is None else len(d[1]),
            "kept_features": in_shape[2] * in_shape[3] if d[2] is None else int(d[2].sum()),
            "macs": int(batch_effective_macs(conv, in_shape, *_masks(d, in_shape))[0])}


def dense_macs(conv: nn.Module, in_shape: tuple[int, int, int, int]) -> int:
    """Effective MACs of `conv` on its whole site input `in_shape` (C, T, H, W)."""
    return int(batch_effective_macs(conv, in_shape, *_masks((None, None, None), in_shape))[0])


def grid_key(shares: tuple[float, float, float]) -> str:
    """The key of a grid point (frames, channels, features shares), e.g. ``0.5,1,0.25``."""
    return ",".join(f"{s:g}" for s in shares)


def measure(cfg: dict, model_name: str) -> dict[str, Any]:
    """Time every prunable layer at every grid point (module docstring); returns
    ``{"rows": [...], "conditions": {...}}``."""
    from dance.data.dataset import open_split
    from dance.models.trained import build
    from dance.runtime import setup

    setup({**cfg, "device": "cpu"})
    a, t = cfg["aap"], cfg["aap"]["latency_table"]
    threads = cfg["bench"]["threads"] or torch.get_num_threads()
    torch.set_num_threads(threads)
    shape = (3, cfg["dataset"]["frames"], cfg["dataset"]["size"], cfg["dataset"]["size"])
    torch.manual_seed(cfg["seed"])
    model = build(cfg, model_name, open_split(cfg, "test").num_classes).eval()
    model = timed_network(model, **timing_options(cfg))
    gen = torch.Generator().manual_seed(cfg["seed"])
    clip = torch.rand(1, *shape, generator=gen)
    if cfg["bench"]["channels_last"]:
        clip = clip.contiguous(memory_format=torch.channels_last_3d)
    inputs = site_inputs(model, clip)
    grid = table_grid(t)
    clock = time.thread_time if threads == 1 else time.perf_counter
    rows, overhead = [], {}
    for index, (name, _, conv) in enumerate(model.prunable_convs()):
        x = inputs[name]
        in_shape = tuple(int(s) for s in x.shape[1:])
        plan = PrunedConv(conv, nonneg=bool((x >= 0).all()), channel_multiple=a["channel_multiple"])
        variants: dict[str, Any] = {"dense": conv}
        points = {}
        for shares in grid:
            key = grid_key(shares)
            points[key] = grid_point(conv, in_shape, shares, a["channel_multiple"],
                                     a["min_frames"])
            variants[key] = (lambda inp, d=points[key]["decision"], p=plan:
                             p(inp, decision=d)[0])
        res = time_variants(variants, [x], warmup=t["warmup"], repeats=t["repeats"],
                            audit=False, clock=clock)
        dense = res["summary"]["dense"]["median"]
        # the decision itself (profiles, keep rule, round-up) at thresholds that keep all,
        # beside dense and the all-kept point in a run of its own with more repeats: a
        # difference of two medians ~0.1 ms apart was the noisiest number of the table
        over = time_variants({"dense": conv, ALL_KEPT: variants[ALL_KEPT],
                              "decide": lambda inp, p=plan: p(inp, tau=DECIDE_TAU)[0]},
                             [x], warmup=t["warmup"], repeats=OVERHEAD_REPEATS * t["repeats"],
                             audit=False, clock=clock)["summary"]
        overhead[name] = {key: over[variant]["median"] * 1e3 for key, variant in
                          (("dense_ms", "dense"), ("all_kept_ms", ALL_KEPT),
                           ("decide_ms", "decide"))}
        full = dense_macs(conv, in_shape)
        for (fr, ch, fe), key in zip(grid, points, strict=True):
            p = points[key]
            s = res["summary"][key]
            rows.append({
                "model": model_name, "layer": name, "index": index, "in_channels": in_shape[0],
                "in_frames": in_shape[1], "height": in_shape[2], "width": in_shape[3],
                "frames_share": fr, "channels_share": ch, "features_share": fe,
                "kept_frames": p["kept_frames"], "kept_channels": p["kept_channels"],
                "kept_features": p["kept_features"], "macs": p["macs"],
                "dense_macs": full, "median_ms": s["median"] * 1e3,
                "p25_ms": s["p25"] * 1e3, "p75_ms": s["p75"] * 1e3,
                "dense_median_ms": dense * 1e3, "ratio_to_dense": s["median"] / dense,
                "n": s["n"]})
    floor = skip_prunable_convs(copy.deepcopy(model))
    whole = time_variants({"dense": model, "dense-floor": floor}, [clip],
                          warmup=t["warmup"], repeats=t["repeats"] * 4, audit=True, clock=clock)
    conditions = {
        "model": model_name, "clip": list(shape), "threads": threads, "clock": clock.__name__,
        "warmup": t["warmup"], "repeats": t["repeats"],
        "overhead_repeats": OVERHEAD_REPEATS * t["repeats"], "grid": {k: list(t[k]) for k in
                                                                  ("frames", "channels",
                                                                   "features")},
        "channel_multiple": a["channel_multiple"], "min_frames": a["min_frames"],
        "channels_last": cfg["bench"]["channels_last"], "prepare": cfg["bench"]["prepare"],
        "weights": "random (latency does not depend on them)",
        "network_dense_ms": whole["summary"]["dense"]["median"] * 1e3,
        "network_floor_ms": whole["summary"]["dense-floor"]["median"] * 1e3,
        "per_layer_overhead": overhead, "audit": whole["audit"], "environment": environment()}
    return {"rows": rows, "conditions": conditions}


def write_table(cfg: dict, model_name: str) -> Path:
    """Measure and write ``Paths.latency_table(model)`` (CSV) and its ``.json``."""
    out = Paths(cfg).latency_table(model_name)
    res = measure(cfg, model_name)
    write_json(out.with_suffix(".json"), res["conditions"])
    write_csv(out, res["rows"], COLUMNS)
    return out


def overhead_summary(path: Path) -> str:
    """Console lines: per layer, the dense conv and the all-kept pruned path (the decision
    overhead per pruned conv), the whole network's dense and floor latency, and the least
    predicted latency any grid decisions reach (:meth:`LatencyModel.best_ratio`; the
    controller's own time is not in the table)."""
    cond = read_json(path.with_suffix(".json"))
    lines = [f"{cond['model']}: clip {cond['clip']}, {cond['threads']} threads "
             f"({cond['clock']}): network dense {cond['network_dense_ms']:.2f} ms, floor "
             f"{cond['network_floor_ms']:.2f} ms (outside the prunable convs)"]
    for layer, o in cond["per_layer_overhead"].items():
        lines.append(f"  {layer}: dense {o['dense_ms']:.3f} ms; pruned path, decision fixed to "
                     f"keep all {o['all_kept_ms']:.3f} ms "
                     f"({(o['all_kept_ms'] - o['dense_ms']) * 1e3:+.0f} µs); deciding at τ → 0 "
                     f"{o['decide_ms']:.3f} ms ({(o['decide_ms'] - o['dense_ms']) * 1e3:+.0f} µs)")
    model = LatencyModel.load(path, list(cond["per_layer_overhead"]))
    best, shares = model.best_ratio()
    lines.append(f"  least predicted latency any grid decisions reach: {best:.3f} of dense "
                 f"(speed-up {1 / best:.2f}x, the controller's time not included; layers "
                 f"left dense: {sum(s is None for s in shares)} of {len(shares)})")
    return "\n".join(lines)


def host_latency_model(paths: Paths, model_name: str, layers: list[str]) -> LatencyModel:
    """The latency model of `model_name` (``aap.cost: latency``), from the table it trains
    against (``Paths.training_latency_table``: this host's, or the one
    ``aap.latency_table_file`` pins); a missing table is named with the command that writes
    it."""
    path = paths.training_latency_table(model_name)
    if not path.exists() and paths.pinned_latency_table:
        raise ConfigError(f"config key 'aap.latency_table_file' names {path} for "
                          f"{model_name}, which does not exist (a table written by `python -m "
                          f"dance latency-table`, its .json beside it)")
    if not path.exists():
        raise ConfigError(f"config key 'aap.cost' is latency, but the latency table {path} "
                          f"does not exist: run `python -m dance latency-table --model "
                          f"{model_name}` (rule latency_table) first")
    return LatencyModel.load(path, layers)


def latency_model(cost: str, paths: Paths, model_name: str, layers: list[str],
                  ) -> LatencyModel | None:
    """What a controller of `model_name` trains against: the host's latency model
    (:func:`host_latency_model`) when `cost` (``aap.cost``) is latency, else None (MACs)."""
    return host_latency_model(paths, model_name, layers) if cost == "latency" else None


def layers_that_pay(model: LatencyModel) -> list[bool]:
    """Per layer: can deciding there ever pay on the table's machine? True when the layer's fastest
    grid point saves more than its measured decision overhead (dense − min over the grid >
    ``decide_ms − all_kept_ms``). A latency-aware controller decides only in those layers:
    the overhead is paid once a layer decides at all, which gradient descent on soft
    masks cannot weigh (a layer's first pruned entry costs the whole overhead)."""
    best = model.table_ms.flatten(1).min(1).values
    return [bool(v) for v in (model.dense_layer_ms - best) > model.decide_ms]


class LatencyModel(nn.Module):
    """Predicted whole-network latency from per-layer kept shares, differentiable.

    Per layer, the measured pruned-conv latency on the grid (frames × channels × features
    shares) is interpolated trilinearly (shares clamped to the grid's range); a layer the
    controller never prunes costs its dense conv's measured time. The grid's decisions are
    fixed, so a layer that decides for itself also pays its measured decision overhead
    (``decide_ms − all_kept_ms`` of ``per_layer_overhead``: the profiles and keep rules, 0
    when not measured). The network's prediction = the floor (time outside the prunable
    convs) + the sum over layers. ``ratio(shares)`` divides it by the measured dense network
    latency.
    """

    def __init__(self, grid: tuple[list[float], list[float], list[float]],
                 table_ms: Tensor, dense_layer_ms: Tensor, floor_ms: float, dense_ms: float,
                 layers: list[str], decide_ms: Tensor | None = None) -> None:
        super().__init__()
        self.layers = layers
        self.register_buffer("dense_layer_ms", dense_layer_ms.to(torch.float64),
                             persistent=False)
        decide = torch.zeros(len(layers)) if decide_ms is None else decide_ms
        self.register_buffer("decide_ms", decide.to(torch.float64).clamp_min(0.0),
                             persistent=False)
        for i, g in enumerate(grid):
            self.register_buffer(f"grid{i}", torch.tensor(sorted(g), dtype=torch.float64),
                                 persistent=False)
        self.register_buffer("table_ms", table_ms.to(torch.float64), persistent=False)
        self.floor_ms = float(floor_ms)
        self.dense_ms = float(dense_ms)

    @classmethod
    def load(cls, path: Path, layers: list[str]) -> LatencyModel:
        """From a table written by :func:`write_table`; the layers must be the network's."""
        import csv

        cond = read_json(path.with_suffix(".json"))
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        try:
            grid = tuple(sorted({float(r[k]) for r in rows})
                         for k in ("frames_share", "channels_share", "features_share"))
            [float(r["median_ms"]) + float(r["dense_median_ms"]) for r in rows]
            cond["network_floor_ms"], cond["network_dense_ms"]
        except (KeyError, ValueError, TypeError) as exc:
            raise DanceError(f"latency table {path} (or its .json) is not one written by "
                             f"`python -m dance latency-table` ({type(exc).__name__}: {exc}); "
                             f"re-run it") from None
        if not rows:
            raise DanceError(f"latency table {path} is empty; re-run `python -m dance "
                             f"latency-table`")
        found = list(dict.fromkeys(r["layer"] for r in rows))
        if found != list(layers):
            raise DanceError(f"latency table {path} is of layers {found}, the network has "
                             f"{list(layers)}: re-run `python -m dance latency-table`")
        table = torch.empty(len(layers), *(len(g) for g in grid), dtype=torch.float64)
        dense = torch.empty(len(layers), dtype=torch.float64)
        for r in rows:
            dense[found.index(r["layer"])] = float(r["dense_median_ms"])
            idx = [g.index(float(r[k])) for g, k in zip(
                grid, ("frames_share", "channels_share", "features_share"), strict=True)]
            table[found.index(r["layer"]), idx[0], idx[1], idx[2]] = float(r["median_ms"])
        over = cond.get("per_layer_overhead") or {}     # a device table has none
        decide = torch.tensor([over[n]["decide_ms"] - over[n]["all_kept_ms"] if n in over
                               else 0.0 for n in layers], dtype=torch.float64)
        return cls(grid, table, dense, cond["network_floor_ms"], cond["network_dense_ms"],
                   layers, decide)

    def _axis(self, g: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """Lower grid index and interpolation weight of shares `s` on axis `g`."""
        if len(g) == 1:
            return torch.zeros_like(s, dtype=torch.long), torch.zeros_like(s)
        s = s.clamp(float(g[0]), float(g[-1]))
        i = (torch.searchsorted(g, s.detach().contiguous(), right=True) - 1).clamp(0, len(g) - 2)
        return i, (s - g[i]) / (g[i + 1] - g[i])

    def layer_ms(self, shares: Tensor) -> Tensor:
        """[N, L] predicted latency (ms) of each layer for kept shares [N, L, 3]."""
        s = shares.to(torch.float64)
        n, layers = s.shape[:2]
        out = s.new_zeros(n, layers)
        axes = [self._axis(getattr(self, f"grid{d}"), s[..., d]) for d in range(3)]
        lidx = torch.arange(layers, device=s.device).expand(n, layers)
        for corner in itertools.product((0, 1), repeat=3):
            weight = s.new_ones(n, layers)
            idx = []
            for d, bit in enumerate(corner):
                i, w = axes[d]
                size = self.table_ms.shape[d + 1]
                idx.append((i + bit).clamp(max=size - 1))
                weight = weight * (w if bit else 1 - w)
            out = out + weight * self.table_ms[lidx, idx[0], idx[1], idx[2]]
        return out

    def best_ratio(self) -> tuple[float, list[tuple[float, float, float] | None]]:
        """The least predicted latency ratio any decisions on the grid reach, and per layer
        the kept shares that reach it (None: the layer is better left dense, its decision
        overhead above what its cheapest grid point saves). The ceiling of what a
        controller trained against this table can be predicted to gain on its machine,
        whatever it costs in accuracy."""
        grids = [getattr(self, f"grid{d}") for d in range(3)]
        best_ms, shares = self.floor_ms, []
        for i in range(len(self.layers)):
            flat = int(self.table_ms[i].flatten().argmin())
            pruned_ms = float(self.table_ms[i].flatten()[flat] + self.decide_ms[i])
            if pruned_ms < float(self.dense_layer_ms[i]):
                idx = torch.unravel_index(torch.tensor(flat), self.table_ms[i].shape)
                shares.append(tuple(float(g[int(j)]) for g, j in zip(grids, idx, strict=True)))
                best_ms += pruned_ms
            else:
                shares.append(None)
                best_ms += float(self.dense_layer_ms[i])
        return best_ms / self.dense_ms, shares

    def ratio(self, shares: Tensor, pruned: Tensor | None = None) -> Tensor:
        """[N] predicted network latency / measured dense latency. `pruned` [L] bool: the
        layers that run the pruned path; the others run their dense conv (no decision, no
        overhead) and cost its measured time."""
        per_layer = self.layer_ms(shares) + self.decide_ms[None]
        if pruned is not None:
            per_layer = torch.where(pruned.to(per_layer.device)[None], per_layer,
                                    self.dense_layer_ms[None])
        return (self.floor_ms + per_layer.sum(1)) / self.dense_ms
