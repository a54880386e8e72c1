"""What the controller costs inside the network at batch 1, per kind of statistics.

    python scripts/controller_overhead.py [--model c3d] [--repeats 300] [--threads 2]

Backbone at the default size (quarter width, 8×64×64) with random weights (time does not
depend on them), prepared as the bench prepares it. One network, so that no variant differs
from another by where its weights lie in memory (separate copies differed by up to 1%):
``dense`` runs it with AAP off (each wrapper calls its conv), ``bypass`` with every
threshold fixed to 0 without calling a controller (the wrappers' glue alone), and one
variant per ``aap.stats`` kind runs a controller of that kind whose thresholds are all 0
(its mask zeroed, like the bench's ``dance@K:tau0`` probe: the statistics and both layers
run, nothing is pruned). Interleaved rounds (:func:`dance.measure.latency.time_variants`);
prints each variant's median, its speed-up over dense and its paired excess in µs.
A controller alone on a warm activation costs 3-5× less than here (docs/experiments.md).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dance.aap.controller import STATS, Controller
from dance.aap.factory import _first_activation_shape
from dance.aap.model import AAPNet, network_macs
from dance.measure.latency import time_variants
from dance.measure.variants import timed_network
from dance.models.registry import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="c3d", choices=["c3d", "r3d18"])
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.model, 10, width=0.25, frames=8, size=64)
    macs = network_macs(model, model.clip_shape)
    a1 = _first_activation_shape(model, macs)
    layers = len(macs["names"])

    def controller(kind: str) -> Controller:
        ctrl = Controller(a1[0], a1[1], layers, hidden=64, tau_max=1.2, tau_init=0.2,
                          stats=kind).eval()
        ctrl.mask.zero_()
        return ctrl

    controllers = {kind: controller(kind) for kind in STATS}
    net = AAPNet(timed_network(model.eval(), True, False), controllers[STATS[0]],
                 eval_mode="pruned", channel_multiple=8)
    net.prepare_pruned()

    def variant(name: str):
        def run(x: torch.Tensor) -> torch.Tensor:
            if name == "dense":
                return net(x, mode="off")
            net.state.fixed_tau = torch.zeros(layers, 3) if name == "bypass" else None
            net.controller = controllers.get(name)
            return net(x)
        return run

    names = ["dense", "bypass", *STATS]
    clips = [torch.rand(1, *model.clip_shape) for _ in range(4)]
    result = time_variants({n: variant(n) for n in names}, clips, warmup=30,
                           repeats=args.repeats)
    dense = np.array(result["seconds"]["dense"])
    print(f"{args.model}, {args.threads} threads, {args.repeats} x {len(clips)} rounds")
    for n in names:
        s = np.array(result["seconds"][n])
        print(f"  {n:8s} {np.median(s) * 1e3:7.3f} ms  speed-up {np.median(dense) / np.median(s):.3f}"
              f"  paired excess {np.median(s - dense) * 1e6:6.0f} us")


if __name__ == "__main__":
    main()
