"""Conv backend policy, interleaved latency bench, RAPL reader. Nothing here asserts a
timing: performance is measured and reported, never a pass/fail criterion."""

from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dance.measure import latency, rapl
from dance.measure.bench import measure_energy, parse_variants
from dance.models import build_model
from dance.nn import conv as nnconv

needs_mkldnn = pytest.mark.skipif(not nnconv.mkldnn_available(), reason="no oneDNN in this build")


# --- conv3d and the backend policy ------------------------------------------------------

CASES = [  # (cin, cout, kernel, stride, padding, dilation, groups, bias, input T,H,W)
    (3, 8, 3, 1, 1, 1, 1, False, (4, 9, 9)),
    (8, 12, (1, 3, 3), (1, 2, 2), (0, 1, 1), 1, 1, True, (5, 11, 10)),
    (8, 8, 3, 2, 0, 1, 2, True, (6, 9, 9)),
    (12, 6, (3, 7, 7), (1, 2, 2), (1, 3, 3), 1, 3, False, (4, 16, 16)),
    (4, 4, 3, 1, 2, 2, 1, True, (6, 8, 8)),
    (16, 16, 1, 2, 0, 1, 1, False, (4, 8, 8)),
]


@pytest.mark.parametrize("policy", nnconv.BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_conv3d_matches_f_conv3d_under_every_policy(policy, case):
    cin, cout, k, stride, pad, dil, groups, has_bias, thw = case
    g = torch.Generator().manual_seed(0)
    kt = (k,) * 3 if isinstance(k, int) else k
    w = torch.randn(cout, cin // groups, *kt, generator=g) / math.sqrt(cin // groups * math.prod(kt))
    b = torch.randn(cout, generator=g) if has_bias else None
    for batch in (1, 2):
        x = torch.randn(batch, cin, *thw, generator=g)
        ref = F.conv3d(x, w, b, stride, pad, dil, groups)
        with nnconv.conv_backend(policy):
            out = nnconv.conv3d(x, w, b, stride, pad, dil, groups)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_policy_context_restores_and_rejects_unknown_names():
    assert nnconv.get_conv_backend() == "auto"
    with nnconv.conv_backend("native"):
        assert nnconv.get_conv_backend() == "native"
        with nnconv.conv_backend("mkldnn"):
            assert nnconv.get_conv_backend() == "mkldnn"
        assert nnconv.get_conv_backend() == "native"
    assert nnconv.get_conv_backend() == "auto"
    with pytest.raises(ValueError, match="auto, mkldnn, native"):
        nnconv.set_conv_backend("cudnn")


def test_unsupported_inputs_fall_back_to_native():
    x, w = torch.randn(1, 2, 3, 5, 5, dtype=torch.float64), torch.randn(4, 2, 3, 3, 3,
                                                                        dtype=torch.float64)
    assert nnconv.resolve_backend(x, w, policy="mkldnn") == "native"
    assert nnconv.resolve_backend(x.float(), w.float(), padding="same", policy="mkldnn") == "native"
    assert nnconv.resolve_backend(x.float(), w.float(), policy="native") == "native"
    out = nnconv.conv3d(x, w, None, 1, 1)
    torch.testing.assert_close(out, F.conv3d(x, w, None, 1, 1))


@pytest.mark.parametrize("mode", ["zeros", "replicate", "reflect", "circular"])
def test_fast_conv_equals_conv3d_for_every_padding_mode(mode):
    torch.manual_seed(0)
    ref = nn.Conv3d(4, 6, 3, stride=(1, 2, 1), padding=1, padding_mode=mode)
    fast = nnconv.use_fast_convs(nn.Sequential(ref))[0]
    assert type(fast) is nnconv.FastConv3d
    x = torch.randn(1, 4, 4, 7, 7)
    with torch.no_grad():
        got = fast(x)
        nnconv.use_native_convs(nn.Sequential(fast))
        want = fast(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["c3d", "r3d18"])
def test_use_fast_convs_keeps_outputs_state_dict_and_references(name):
    torch.manual_seed(0)
    model = build_model(name, 5, width=0.125, frames=4, size=24).eval()
    x = torch.randn(1, 3, 4, 24, 24)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    convs_before = [c for _, _, c in model.prunable_convs()]
    with torch.no_grad():
        ref = model(x)
        nnconv.use_fast_convs(model)
        out = model(x)
    assert all(type(m) is not nn.Conv3d for m in model.modules())
    assert sum(isinstance(m, nnconv.FastConv3d) for m in model.modules()) > 0
    assert [c for _, _, c in model.prunable_convs()] == convs_before  # same objects
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


@needs_mkldnn
def test_audit_sees_slow3d_natively_and_the_forced_label_under_mkldnn():
    conv = nn.Conv3d(32, 64, 3, padding=1, bias=False)
    x = torch.randn(1, 32, 4, 16, 16)
    assert nnconv.conv_backend_audit(conv, x) == {"Slow3d": 1}
    assert nnconv.conv_backend_audit(conv, torch.cat([x, x])) == {"Mkldnn": 1}
    fast = nnconv.use_fast_convs(nn.Sequential(conv))
    with nnconv.conv_backend("mkldnn"):
        assert nnconv.conv_backend_audit(fast, x) == {nnconv.FORCED_LABEL: 1}
    with nnconv.conv_backend("native"):
        assert nnconv.conv_backend_audit(fast, x) == {"Slow3d": 1}
    # functional calls on sliced weights are seen too (pruned inference does that)
    with nnconv.conv_backend("auto"):
        audit = nnconv.conv_backend_audit(
            lambda t: nnconv.conv3d(t[:, :16], conv.weight[:, :16], None, 1, 1), x)
    assert audit == {nnconv.FORCED_LABEL: 1}


# --- interleaved timing -----------------------------------------------------------------

class FakeClock:
    """Time advances only when a fake variant says so: durations are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fake_variants(log: list[str], clock: FakeClock, durations: dict[str, list[float]]):
    def make(name):
        cycle = itertools.cycle(durations[name])

        def run(x):
            log.append(name)
            clock.now += next(cycle)
            return x
        return run
    return {n: make(n) for n in durations}


def test_time_variants_structure_interleaving_and_ratio_math():
    log: list[str] = []
    clock = FakeClock()
    durations = {"dense": [0.010, 0.012, 0.011], "a": [0.005], "b": [0.020, 0.040]}
    variants = _fake_variants(log, clock, durations)
    clips = [torch.zeros(1, 1) for _ in range(3)]
    res = latency.time_variants(variants, clips, warmup=2, repeats=2, clock=clock, audit=False)

    names = ["dense", "a", "b"]
    assert res["variants"] == names and res["reference"] == "dense"
    warm = [latency.rotated(names, w) for w in range(2)]
    timed = [latency.rotated(names, k) for k in range(6)]
    assert log == [n for order in warm + timed for n in order]
    assert res["schedule"] == timed
    assert timed[0] == ["dense", "a", "b"] and timed[1] == ["a", "b", "dense"]
    assert timed[2] == ["b", "dense", "a"] and timed[3] == timed[0]

    for n in names:
        assert len(res["seconds"][n]) == 6
        assert set(res["summary"][n]) == {"median", "p25", "p75", "iqr", "mean", "n"}
        assert res["summary"][n]["n"] == 6
    dense_med = res["summary"]["dense"]["median"]
    assert dense_med == pytest.approx(0.011)
    assert res["summary"]["a"]["median"] == pytest.approx(0.005)
    assert res["summary"]["b"]["median"] == pytest.approx(0.030)
    assert res["summary"]["a"]["iqr"] == pytest.approx(0.0)
    assert res["ratio"]["dense"] == pytest.approx(1.0)
    assert res["ratio"]["a"] == pytest.approx(0.005 / 0.011)
    assert res["speedup"]["b"] == pytest.approx(0.011 / 0.030)
    assert res["ratio_status"]["a"].startswith("ok")
    env = res["environment"]
    for key in ("threads", "cpu", "torch", "conv_backend"):
        assert env[key] not in (None, "")
    assert env["threads"] == torch.get_num_threads()


def test_summarise_percentiles():
    s = latency.summarise([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s == {"median": 3.0, "p25": 2.0, "p75": 4.0, "iqr": 2.0, "mean": 22.0, "n": 5}


@needs_mkldnn
def test_ratio_is_refused_when_variants_ran_on_other_kernels():
    w = torch.randn(64, 32, 3, 3, 3) / 30
    clips = [torch.randn(1, 32, 4, 16, 16)]
    variants = {
        "dense": lambda x: nnconv.conv3d(x, w, None, 1, 1),            # policy: forced
        "same-kernels": lambda x: nnconv.conv3d(x[:, :16], w[:, :16], None, 1, 1),
        "native": lambda x: F.conv3d(x, w, None, 1, 1),                # Slow3d at batch 1
    }
    with nnconv.conv_backend("auto"):
        res = latency.time_variants(variants, clips, warmup=0, repeats=1)
    assert res["audit"]["dense"] == {nnconv.FORCED_LABEL: 1}
    assert res["audit"]["native"] == {"Slow3d": 1}
    assert res["ratio_status"]["same-kernels"] == "ok" and res["ratio"]["same-kernels"] > 0
    assert res["ratio_status"]["native"].startswith("refused")
    assert res["ratio"]["native"] is None and res["speedup"]["native"] is None


def test_time_variants_rejects_a_missing_reference():
    with pytest.raises(ValueError, match="reference"):
        latency.time_variants({"a": lambda x: x}, [torch.zeros(1)], 0, 1, audit=False)


@needs_mkldnn
def test_slow_path_check_reports_the_kernels_of_batch_1_and_2():
    model = build_model("c3d", 4, width=0.125, frames=4, size=16).eval()
    res = latency.slow_path_check(model, torch.randn(1, 3, 4, 16, 16), warmup=0, repeats=1)
    assert res["slow3d_at_batch1"] is True
    assert set(res["batch2_audit"]) == {"Mkldnn"}
    assert res["forced_audit"] == {nnconv.FORCED_LABEL: res["convs"]}
    assert res["max_abs_diff"] < 1e-4
    for key in ("batch1_native_ms", "batch2_native_ms_per_clip", "batch1_mkldnn_ms"):
        assert res[key] > 0
    assert all(type(m) is not nnconv.FastConv3d for m in model.modules())  # untouched


def test_parse_variants_puts_the_reference_first_once():
    assert parse_variants("dense-native,dense,x") == ["dense", "dense-native", "x"]
    assert parse_variants(None)[0] == "dense"


# --- RAPL -------------------------------------------------------------------------------

def test_rapl_unavailable_names_the_path(tmp_path):
    missing = tmp_path / "powercap"
    ok, reason = rapl.available(missing)
    assert not ok and str(missing) in reason and reason.startswith("RAPL not readable")
    if not rapl.DEFAULT_ROOT.exists():  # the case on the development machine
        ok, reason = rapl.available()
        assert not ok and "/sys/class/powercap does not exist" in reason
    with pytest.raises(RuntimeError, match="does not exist"):
        rapl.RaplMeter(missing).start()


def _domain(root: Path, name: str, label: str, energy: int, max_range: int) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def fake_powercap(root: Path) -> dict[str, Path]:
    """Two packages, plus a core subdomain and an mmio duplicate that must be ignored."""
    return {
        "p0": _domain(root, "intel-rapl:0", "package-0", 999_900, 1_000_000),
        "p1": _domain(root, "intel-rapl:1", "package-1", 5_000, 1_000_000),
        "core": _domain(root, "intel-rapl:0:0", "core", 10, 1_000_000),
        "mmio": _domain(root, "intel-rapl-mmio:0", "package-0", 10, 1_000_000),
    }


def _set(d: Path, value: int) -> None:
    (d / "energy_uj").write_text(f"{value}\n")


def test_rapl_wraparound_on_a_fake_sysfs_tree(tmp_path):
    dirs = fake_powercap(tmp_path)
    ok, reason = rapl.available(tmp_path)
    assert ok and "package-0" in reason and "package-1" in reason
    meter = rapl.RaplMeter(tmp_path)
    assert [d.name for d in meter.domains] == ["package-0", "package-1"]
    meter.start()
    _set(dirs["p0"], 50)            # wrapped: 1_000_000 - 999_900 + 50 = 150 µJ
    _set(dirs["p1"], 6_000)         # +1000 µJ
    _set(dirs["core"], 999_999)     # subdomain: not counted
    assert meter.sample() == pytest.approx(1150e-6)
    _set(dirs["p0"], 999_000)       # +998_950 µJ, then wraps again before stop
    meter.sample()
    _set(dirs["p0"], 100)           # +1_000 + 100 µJ
    assert meter.stop() == pytest.approx((150 + 1000 + 998_950 + 1_100) / 1e6)
    assert meter.joules_by_domain["package-1"] == pytest.approx(1000e-6)
    assert rapl.energy_delta_uj(10, 30, 100) == 20
    assert rapl.energy_delta_uj(90, 5, 100) == 15


def test_rapl_measure_and_permission_denied(tmp_path, monkeypatch):
    dirs = fake_powercap(tmp_path)
    meter = rapl.RaplMeter(tmp_path)
    result, joules, seconds = meter.measure(lambda: _set(dirs["p1"], 7_000) or "done")
    assert result == "done" and joules == pytest.approx(2000e-6) and seconds >= 0

    real_read = Path.read_text

    def deny(self, *a, **k):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real_read(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", deny)
    ok, reason = rapl.available(tmp_path)
    assert not ok and "permission denied" in reason and "energy_uj" in reason


def test_bench_energy_is_measured_only_with_rapl(tmp_path):
    dirs = fake_powercap(tmp_path)

    def burn(x):  # each call "uses" 2 mJ on package 1
        value = int((dirs["p1"] / "energy_uj").read_text())
        _set(dirs["p1"], value + 2_000)
        return x

    clips = [torch.zeros(1)]
    got = measure_energy({"dense": burn}, clips, 0.01, rapl.RaplMeter(tmp_path))
    assert got["dense"]["j_per_clip"] == pytest.approx(2e-3)
    assert got["dense"]["status"].startswith("measured")
    none = measure_energy({"dense": burn}, clips, 0.01, rapl.RaplMeter(tmp_path / "nope"))
    assert none["dense"]["j_per_clip"] is None
    assert none["dense"]["status"].startswith("RAPL not readable")


def test_environment_records_cpu_and_threads():
    env = latency.environment()
    assert env["cpu"] and env["threads"] == torch.get_num_threads()
    assert env["cores_available"] >= 1 and env["torch"] == torch.__version__
    assert os.path.exists("/proc/cpuinfo") is False or env["cpu"] != "unknown"


def test_dense_floor_runs_everything_but_the_prunable_convs():
    """The floor variant keeps the network's other work (first conv, pooling, classifier)
    and its output shape, but calls no prunable conv once it has seen the clip shape."""
    import copy

    from dance.measure.variants import SkippedConv, skip_prunable_convs
    from dance.models import build_model
    from dance.nn import conv_backend_audit, use_fast_convs

    for name in ("c3d", "r3d18"):
        model = use_fast_convs(build_model(name, 5, width=0.125, frames=4, size=32).eval())
        floor = skip_prunable_convs(copy.deepcopy(model))
        x = torch.randn(1, 3, 4, 32, 32)
        with torch.no_grad():
            dense_out, floor_out = model(x), floor(x)
            assert floor_out.shape == dense_out.shape
            dense_calls = sum(conv_backend_audit(model, x).values())
            floor_calls = sum(conv_backend_audit(floor, x).values())
        assert dense_calls - floor_calls == len(model.prunable_convs())
        assert all(isinstance(floor.get_submodule(n), SkippedConv)
                   for n, _, _ in model.prunable_convs())


def test_controller_overhead_script_times_every_statistics_kind():
    """scripts/controller_overhead.py (docs/experiments.md, 2026-12-08) runs end to end and
    prints dense, the bypass and one line per aap.stats kind, each with a speed-up."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    from dance.aap.controller import STATS

    script = Path(__file__).resolve().parents[1] / "scripts" / "controller_overhead.py"
    res = subprocess.run([sys.executable, str(script), "--model", "r3d18", "--repeats", "1",
                          "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    for name in ("dense", "bypass", *STATS):
        assert re.search(rf"^\s+{name}\s+[\d.]+ ms\s+speed-up [\d.]+", res.stdout, re.M), res.stdout
