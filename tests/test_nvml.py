"""GPU energy from NVML (issue 22.1): not measured without it, exact on known samples."""

from __future__ import annotations

import os
import sys
import threading
import types

import pytest
import torch

from dance.measure import nvml
from dance.measure.bench import energy_meter, measure_energy
from dance.measure.rapl import RaplMeter


class FakeClock:
    """Seconds that advance by `step` at every reading (thread-safe)."""

    def __init__(self, step: float = 0.01) -> None:
        self.t, self.step, self.lock = 0.0, step, threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            self.t += self.step
            return self.t


def fake_nvml(power_w, clock: FakeClock, name="NVIDIA Fake 80GB", energy_counter=True,
              init_error: str | None = None) -> types.ModuleType:
    """A stand-in for pynvml whose power (mW) is `power_w(t)` at the clock's last reading
    and whose energy counter (mJ) is that power's exact integral."""
    mod = types.ModuleType("pynvml")
    mod.calls = []

    def init():
        if init_error:
            raise RuntimeError(init_error)

    mod.nvmlInit = init
    mod.nvmlShutdown = lambda: None
    mod.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    mod.nvmlDeviceGetName = lambda h: name.encode()      # older bindings return bytes
    mod.nvmlDeviceGetPowerUsage = lambda h: power_w(clock.t) * 1e3
    if energy_counter:
        mod.nvmlDeviceGetTotalEnergyConsumption = lambda h: int(round(
            1e3 * (3.0 * clock.t + clock.t ** 2)))          # ∫ (3 + 2t) dt, in mJ
    return mod


def test_trapezoid_is_exact_on_piecewise_linear_power():
    samples = [(0.0, 1000.0), (1.0, 3000.0), (1.5, 3000.0), (3.5, 0.0)]
    # 2 J + 1.5 J + 3 J
    assert nvml.integrate_mw(samples) == pytest.approx(6.5)
    assert nvml.integrate_mw(samples[:1]) == 0.0
    with pytest.raises(ValueError, match="out of time order"):
        nvml.integrate_mw([(1.0, 1.0), (0.5, 1.0)])


def test_meter_integrates_the_sampled_power_exactly():
    clock = FakeClock()
    meter = nvml.NvmlMeter(0, interval_s=0.001, nvml=fake_nvml(lambda t: 3.0 + 2.0 * t, clock),
                           clock=clock)
    ok, reason = meter.available()
    assert ok and "NVIDIA Fake 80GB" in reason
    meter.start()
    t0 = meter.samples[0][0]
    for _ in range(50):
        meter.sample()
        threading.Event().wait(0.0005)
    joules = meter.stop()
    t1 = meter.samples[-1][0]
    assert len(meter.samples) >= 2
    # power linear in time: the trapezoid rule gives ∫ (3 + 2t) dt over [t0, t1] exactly
    assert joules == pytest.approx(3.0 * (t1 - t0) + (t1 ** 2 - t0 ** 2), rel=1e-12)
    assert meter.seconds == pytest.approx(t1 - t0)
    assert meter.counter_joules is not None and meter.counter_joules > 0
    assert "NVIDIA Fake 80GB" in meter.describe() and "samples" in meter.describe()


def test_without_nvml_nothing_is_measured(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)          # import fails
    meter = nvml.NvmlMeter(0)
    ok, reason = meter.available()
    assert not ok and reason.startswith(nvml.NOT_MEASURED) and "nvidia-ml-py" in reason
    with pytest.raises(RuntimeError, match="no NVML"):
        meter.start()
    broken = nvml.NvmlMeter(0, nvml=fake_nvml(lambda t: 1.0, FakeClock(),
                                              init_error="NVML Shared Library Not Found"))
    ok, reason = broken.available()
    assert not ok and "NVML Shared Library Not Found" in reason


def test_bench_energy_on_a_gpu_comes_from_nvml():
    clock = FakeClock(step=0.001)
    meter = nvml.NvmlMeter(0, interval_s=0.001, nvml=fake_nvml(lambda t: 50.0, clock),
                           clock=clock)
    got = measure_energy({"dense": lambda x: x}, [torch.zeros(1)], 0.05, meter, clock=clock)
    entry = got["dense"]
    assert entry["status"].startswith("measured: NVML power of NVIDIA Fake 80GB")
    calls = int(entry["status"].split("; ")[-1].split()[0])
    # constant 50 W: joules per clip = 50 W × window / clips, exactly
    assert entry["j_per_clip"] == pytest.approx(50.0 * meter.seconds / calls, rel=1e-12)

    absent = nvml.NvmlMeter(0, nvml=fake_nvml(lambda t: 1.0, FakeClock(), init_error="no GPU"))
    none = measure_energy({"dense": lambda x: x}, [torch.zeros(1)], 0.01, absent)
    assert none["dense"]["j_per_clip"] is None
    assert none["dense"]["status"].startswith("not measured: no NVML")


def test_the_meter_follows_the_device():
    assert isinstance(energy_meter(torch.device("cpu")), RaplMeter)
    gpu = energy_meter(torch.device("cuda", 1))
    assert isinstance(gpu, nvml.NvmlMeter) and gpu.cuda_index == 1


# --- the GPU check's result (issue 22.3) -----------------------------------------------------

def _gpu_bench(tmp_path, device="cuda:0"):
    from dance.io import write_csv, write_json
    from dance.measure.bench import BENCH_COLUMNS

    rows = []
    for variant, ms, speed, joules in [("dense", 4.0, 1.0, 0.2), ("dense-floor", 1.0, 4.0, None),
                                       ("dance@0", 2.5, 1.6, 0.125)]:
        row = {c: None for c in BENCH_COLUMNS}
        row.update(model="c3d", stage="ava", variant=variant, median_ms=ms, iqr_ms=0.1, n=40,
                   speedup_vs_dense=speed, energy_j_per_clip=joules,
                   energy_status="measured: NVML power of NVIDIA H200")
        rows.append(row)
    path = tmp_path / "bench_aap.csv"
    write_csv(path, rows, BENCH_COLUMNS)
    write_json(path.with_suffix(".json"), {
        "timing": {"environment": {"device": device, "gpu": "NVIDIA H200", "torch": "2.13.0"}},
        "energy": {"dense": {"avg_power_w": 50.0}, "dance@0": {"avg_power_w": 50.0}}})
    return path


def test_gpu_result_is_a_device_result_devices_csv_ingests(tmp_path):
    from dance.devices.gpu import gpu_result
    from dance.devices.summary import device_rows

    result = gpu_result([_gpu_bench(tmp_path)])
    assert result["device"] == "gpu" and result["status"] == "measured"
    assert set(result["models"]) == {"c3d:dense", "c3d:dance@0"}     # bounds are not methods
    rows = device_rows(result, [("c3d", "dense"), ("c3d", "dance@0")])
    dance = next(r for r in rows if r["method"] == "dance@0")
    assert dance["device"] == "gpu" and dance["latency_median_ms"] == 2.5
    assert dance["speedup_vs_dense"] == 1.6 and dance["avg_power_w"] == 50.0
    assert dance["energy_efficiency_clips_per_j"] == pytest.approx(8.0)
    assert "NVIDIA H200" in dance["source"] and "NVIDIA H200" in dance["providers"]


def test_gpu_result_refuses_a_bench_timed_on_the_cpu(tmp_path):
    from dance.devices.gpu import gpu_result
    from dance.errors import DeviceError

    with pytest.raises(DeviceError, match="timed on cpu, not on a CUDA GPU"):
        gpu_result([_gpu_bench(tmp_path, device="cpu")])
    with pytest.raises(DeviceError, match="does not exist"):
        gpu_result([tmp_path / "nope.csv"])


def test_gpu_check_says_so_without_a_gpu():
    import subprocess

    from conftest import REPO

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: the check would run")
    env = {**os.environ, "PATH": f"{sys.prefix}/bin:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(REPO / "scripts/gpu_check.sh")], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 3
    assert "no CUDA GPU visible" in proc.stderr and "nothing measured" in proc.stderr


def test_cuda_runs_warn_where_pytorch_has_no_deterministic_kernel():
    from dance.runtime import set_determinism

    try:
        set_determinism(torch.device("cuda"))
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        set_determinism(torch.device("cpu"))
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
