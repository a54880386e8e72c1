"""The package's shape: no import cycle between its modules (function-local imports count
too: a cycle hidden in a function is still a cycle), and no long module without a reason.

Layers, lowest first (read from docs/interfaces.md, "Layers"): errors, config, paths, io → data,
models, nn, measure → aap, train, sota, evaluate, devices → report → cli. The bench's
variant families are registered by the CLI (the composition root), not by the registry.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

SRC = REPO / "src"
MAX_LINES = 350
LONG_REASON = "Why this module is long:"


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "dance").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere in its body."""
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target.split(".")[0] == "dance":
                    found = resolve(target)
                    if found and found != mod and found != "dance":
                        graph[mod].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycle():
    graph = import_graph(modules())
    assert "dance.aap.factory" in graph["dance.train.aap"]          # the graph is real
    found = cycles(graph)
    detail = "; ".join(" ↔ ".join(c) + " (" + ", ".join(
        f"{a} → {b}" for a in c for b in sorted(graph[a] & set(c))) + ")" for c in found)
    assert not found, f"import cycles: {detail}"


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_long_module_without_a_reason():
    long = []
    for name, path in modules().items():
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and LONG_REASON not in doc:
            long.append(f"{name} ({lines} lines)")
    assert not long, (f"modules over {MAX_LINES} lines whose docstring does not say "
                      f"'{LONG_REASON} ...': {', '.join(long)}")


# --- the layer order (issue 24.3) -----------------------------------------------------------

def documented_layers() -> dict[str, int]:
    """Top-level package/module → layer number, read from docs/interfaces.md, "Layers"."""
    import re

    text = (REPO / "docs/interfaces.md").read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    items = re.findall(r"^(\d+)\. (.*?)(?=^\d+\. |^\s*$)", section, re.M | re.S)
    layers = {}
    for number, body in items:
        plain = re.sub(r"\([^()]*\)", "", " ".join(body.split()))
        for name in re.findall(r"`([a-z_]+)`", plain):
            layers[name] = int(number)
    layers["__main__"] = layers["cli"]
    return layers


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    def top(module: str) -> str:
        return module.split(".")[1]

    return sorted(f"{m} (layer {layers[top(m)]}) imports {d} (layer {layers[top(d)]})"
                  for m, deps in graph.items() if m != "dance" for d in deps
                  if layers[top(d)] > layers[top(m)])


def test_every_module_sits_in_a_documented_layer_and_imports_only_downward():
    layers = documented_layers()
    assert layers["errors"] == 1 and layers["report"] == 4 and layers["cli"] == 5
    mods = modules()
    unplaced = sorted({m.split(".")[1] for m in mods if m != "dance"} - set(layers))
    assert not unplaced, f"not in docs/interfaces.md's layer list: {unplaced}"
    assert upward_imports(import_graph(mods), layers) == []


def test_the_layer_check_finds_an_upward_import():
    layers = documented_layers()
    graph = {"dance.measure.bench": {"dance.train.stage"}, "dance.train.stage": {"dance.io"}}
    assert upward_imports(graph, layers) == [
        "dance.measure.bench (layer 2) imports dance.train.stage (layer 3)"]


# --- library functions take the values they use (issue 24.4) ---------------------------------

# Functions of layers 1–2 that take the whole config: entry points that put a stage
# together from it (paths, data, checkpoints, the bench's registry), and the functions that
# define what the config means (validation, identity, the plan). Everything else below
# layer 3 takes the values it uses; a new exception is added here with its reason.
WHOLE_CONFIG = {
    # what the config means: read and validated, its paths, identities and jobs
    "config.*", "paths.*", "identity.*", "plan.*",
    # put a stage together from the config
    "runtime.setup", "data.prepare", "data.data_fingerprint", "data.synthetic.generate",
    "data.synthetic._info", "data.video.prepare_real", "data.dataset.open_split",
    "models.trained.*", "measure.bench.run_bench", "measure.profile.run_profile",
    # the bench's registry: every builder gets the config (families load checkpoints)
    "measure.variants.build_variant", "measure.variants._dense*",
    "measure.variants.timing_options",
}


# Functions of layers 3–4 that take the whole config: the stage entry points (the function a
# `commands` module calls to run one workflow step: where a step is put together) and the few
# functions that put a step together for several of them. Everything beneath them (helpers,
# row, schedule and loss builders, style functions) takes the section or values it reads; a
# new exception is added here with its reason.
ENTRY_POINTS = {
    # stage entry points: what a `commands` module calls to run one workflow step
    "train.baseline.train_baseline", "train.ava.train_ava", "train.aap.train_aap",
    "evaluate.run.evaluate_stage", "ava.stats.sparsity_stats", "aap.evaluate.evaluate_aap",
    "aap.evaluate.validate_aap", "aap.latency_table.write_table", "aap.summary.write_summary",
    "aap.summary.bench_table", "sota.l1.train_l1", "sota.evaluate.evaluate_dense",
    "sota.evaluate.evaluate_l1", "sota.selector.train_selector",
    "sota.selector.evaluate_selector", "sota.bench.bench_variants", "sota.dynamic.train",
    "sota.dynamic.evaluate", "sota.comparison.write_comparison",
    "devices.export.export_bundle", "devices.onnx_bench.bench_onnx",
    "devices.drivers.measure_device", "devices.summary.write_summary",
    "report.claims.write_claims", "report.provenance.write_provenance",
    # the report's registry: the files each artifact reads and writes (asked by the Snakefile
    # with the config, like dance.plan) and its builders, the `table`/`figure` entry points
    "report.registry.*", "report.tables.*.build_t*", "report.figures.*.build_f*",
    # the bench's registry: every family's builder gets the config (it loads checkpoints)
    "aap.bench.build", "sota.bench._build_*",
    # put a step together for several entry points from the device, the splits and the
    # checkpoints: any stage's training, any static network's record, the latency table's
    # measurement, a timed path against the bench's dense variant
    "train.stage.train_stage", "sota.evaluate.evaluate_static", "aap.latency_table.measure",
    "sota.dynamic.time_against_dense",
    # load a trained network checked against the config (its identity is the whole config)
    "aap.factory.aap_meta", "aap.factory.build_net", "aap.factory.load_controller",
    "sota.l1.load_l1", "sota.selector.selector_meta", "sota.selector.load_selector",
    "sota.dynamic.load", "sota.record.dense_reference", "devices.export.build_networks",
    # what a run records: the whole config and its fingerprint
    "report.provenance.provenance",
}


def cfg_functions(sources: dict[str, str]) -> list[str]:
    """`module.function` (without ``dance.``) of every function in `sources` (module name →
    its code) with a parameter named `cfg`."""
    found = []
    for name, code in sources.items():
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                    a.arg == "cfg" for a in node.args.args + node.args.kwonlyargs):
                found.append(f"{name.removeprefix('dance.')}.{node.name}")
    return sorted(found)


def layer_sources(layers: dict[str, int], which: set[int]) -> dict[str, str]:
    """Module name → code of every package module in the layers `which`."""
    return {name: path.read_text() for name, path in modules().items()
            if name != "dance" and layers.get(name.split(".")[1]) in which}


def not_allowed(functions: list[str], allowed: set[str]) -> list[str]:
    import fnmatch

    return [f for f in functions if not any(fnmatch.fnmatch(f, pat) for pat in allowed)]


def test_library_functions_take_the_values_they_use_not_the_config():
    layers = documented_layers()
    for which, allowed, name in (({1, 2}, WHOLE_CONFIG, "WHOLE_CONFIG"),
                                 ({3, 4}, ENTRY_POINTS, "ENTRY_POINTS")):
        found = not_allowed(cfg_functions(layer_sources(layers, which)), allowed)
        assert not found, (f"layer {'/'.join(map(str, sorted(which)))} functions with a `cfg` "
                           f"parameter: {', '.join(found)}; pass the section or values they "
                           f"read (docs/interfaces.md, Layers), or add a pattern to {name} "
                           f"with its reason")


def test_every_pattern_of_the_two_lists_names_a_function():
    """A pattern left behind by a removed or converted function would allow the next one."""
    layers = documented_layers()
    for which, allowed in (({1, 2}, WHOLE_CONFIG), ({3, 4}, ENTRY_POINTS)):
        found = cfg_functions(layer_sources(layers, which))
        assert [p for p in sorted(allowed) if not_allowed(found, {p}) == found] == []


def test_the_config_check_finds_a_new_helper_taking_the_config():
    code = ("def build_f1(cfg, artifact): return shade(cfg)\n"
            "def shade(cfg: dict, n: int = 1): return cfg['plots']['palette']\n"
            "def tint(plots: dict): return plots['palette']\n")
    found = cfg_functions({"dance.report.figures.pruning": code})
    assert found == ["report.figures.pruning.build_f1", "report.figures.pruning.shade"]
    assert not_allowed(found, ENTRY_POINTS) == ["report.figures.pruning.shade"]
