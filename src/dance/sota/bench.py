"""Host-latency bench variants of the compared networks and their latency lookup.

``l1@mild`` / ``l1@aggressive``: the fine-tuned pruned nets; ``selector@t<threshold>``: the
aggressive net with the selector head, escalating to the mild net below the threshold (the
decision is taken per clip inside the timed call, so the time includes the head and every
escalation on the bench's clips). Every variant is rewritten like the dense reference
(:func:`dance.measure.variants.timed_network`: BN folded, policy convs, the bench's memory
format) and timed interleaved with it by ``python -m dance bench-sota``
(:func:`dance.measure.bench.run_bench` → ``Paths.sota_bench``). A record takes its latency
from that file (:func:`bench_latency`), or says why there is none.
"""

from __future__ import annotations

from torch import Tensor, nn

from dance.measure import variants
from dance.measure.variants import VariantFn, register_family
from dance.sota.record import bench_latency, l1_variant  # noqa: F401  (re-exported)


def bench_variants(cfg: dict) -> list[str]:
    """Every compared variant the SOTA bench times beside dense."""
    from dance.plan import L1_LEVELS, selector_threshold_points
    from dance.sota.selector import variant_name

    return [*(l1_variant(level) for level in L1_LEVELS),
            *(variant_name(p) for p in selector_threshold_points(cfg))]


def timed_network(net: nn.Module, like: nn.Module, options: dict) -> nn.Module:
    """`net` (loaded on the CPU) rewritten like every bench variant (BN folded, padding taps
    dropped, policy convs, the bench's memory format: `options`,
    :func:`dance.measure.variants.timing_options`) on the device of the bench's `like`."""
    return variants.timed_network(net.to(next(like.parameters()).device), **options)


def _build_l1(cfg: dict, model_name: str, stage: str, model: nn.Module, name: str,
              ) -> VariantFn:
    from dance.sota.l1 import load_l1

    level = name.split("@", 1)[1]
    net = timed_network(load_l1(cfg, model_name, level, model.classifier.out_features),
                        model, variants.timing_options(cfg))

    def run(x: Tensor) -> Tensor:
        return net(x)

    return run


def _build_selector(cfg: dict, model_name: str, stage: str, model: nn.Module, name: str,
                    ) -> VariantFn:
    from dance.errors import ConfigError
    from dance.plan import selector_threshold_points
    from dance.sota.l1 import load_l1
    from dance.sota.selector import TrunkTap, feature_module, load_selector

    point, known = name.split("@", 1)[1], selector_threshold_points(cfg)
    if point not in known:
        raise ConfigError(f"bench variant {name!r}: {point!r} is not one of the configured "
                          f"selector thresholds {known} (sota.selector.thresholds)")
    threshold = float(point[1:])
    k = model.classifier.out_features
    options = variants.timing_options(cfg)
    agg = timed_network(load_l1(cfg, model_name, "aggressive", k), model, options)
    mild = timed_network(load_l1(cfg, model_name, "mild", k), model, options)
    head = load_selector(cfg, model_name, k).to(next(model.parameters()).device)
    tap = TrunkTap(agg, feature_module(model_name)).__enter__()  # lives with the variant

    def run(x: Tensor) -> Tensor:
        logits = agg(x)
        if float(head.confidence(tap.pooled)[0]) < threshold:
            return mild(x)
        return logits

    run.tap = tap
    return run


register_family("l1@", _build_l1)
register_family("selector@", _build_selector)
