"""GPU energy from NVIDIA's power sensor, read through NVML (method.md §7, issue 22).

RAPL (:mod:`dance.measure.rapl`) sees only the CPU packages; a network that runs on a GPU
draws its power there. NVML (``nvidia-ml-py``, the ``gpu`` extra, imported as ``pynvml``)
reports the board's power in milliwatts (``nvmlDeviceGetPowerUsage``). A background thread
samples it every `interval_s` over the measured window, and the samples are integrated with
the trapezoid rule (:func:`integrate_mw`): exact for power that is linear between samples.
On Ampere and newer boards the reading is a 1-second running average, so a window should
last several seconds (``bench.energy_window_s``); the measured sampling interval is
reported with every result. Where the board also has the total-energy counter (Volta and
newer, ``nvmlDeviceGetTotalEnergyConsumption``, mJ), its increase over the same window is
recorded beside the integral as a cross-check.

The meter has the interface of :class:`dance.measure.rapl.RaplMeter` (``available``,
``start``, ``sample``, ``stop``, ``joules``, ``joules_by_domain``, ``seconds``), so the bench
picks one by the device it times on (:func:`dance.measure.bench.energy_meter`). Without
NVML, nothing is measured and :meth:`NvmlMeter.available` says why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

NOT_MEASURED = "not measured: no NVML"


def integrate_mw(samples: Sequence[tuple[float, float]]) -> float:
    """Joules of (seconds, milliwatts) samples in time order, by the trapezoid rule."""
    joules = 0.0
    for (t0, p0), (t1, p1) in zip(samples, samples[1:], strict=False):
        if t1 < t0:
            raise ValueError(f"power samples out of time order: {t0} then {t1}")
        joules += (t1 - t0) * (p0 + p1) / 2e3
    return joules


def load_nvml() -> tuple[ModuleType | None, str]:
    """(pynvml, "") once NVML is initialised, or (None, why it is not usable)."""
    try:
        import pynvml as nvml
    except ImportError:
        return None, f"{NOT_MEASURED} (nvidia-ml-py is not installed: pip install -e '.[gpu]')"
    try:
        nvml.nvmlInit()
    except Exception as exc:  # pynvml raises NVMLError subclasses, one per driver state
        return None, f"{NOT_MEASURED} (nvmlInit failed: {exc})"
    return nvml, ""


def nvml_index(cuda_index: int) -> int:
    """NVML's index of CUDA device `cuda_index` (they differ under CUDA_VISIBLE_DEVICES)."""
    try:
        import torch.cuda

        return int(torch.cuda._get_nvml_device_index(cuda_index))
    except Exception:  # no CUDA build or no visible-devices list: same numbering
        return int(cuda_index)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlMeter:
    """Joules drawn by one GPU over a window: ``start()``, ``sample()``*, ``stop()``.

    `nvml` may be a stand-in module (tests); by default ``pynvml`` is imported on first use.
    ``samples`` keeps the last window's (seconds, mW) readings; ``counter_joules`` the
    total-energy counter's increase (None where the board has no counter).
    """

    def __init__(self, cuda_index: int = 0, interval_s: float = 0.01,
                 nvml: ModuleType | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.cuda_index = int(cuda_index)
        self.interval_s = float(interval_s)
        self.clock = clock
        self._nvml = nvml
        self._reason = ""
        self._handle: Any = None
        self.name = ""
        self.samples: list[tuple[float, float]] = []
        self.counter_joules: float | None = None
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counter0: int | None = None

    def _open(self) -> bool:
        if self._handle is not None:
            return True
        if self._nvml is None:
            self._nvml, self._reason = load_nvml()
            if self._nvml is None:
                return False
        else:
            try:
                self._nvml.nvmlInit()
            except Exception as exc:
                self._reason = f"{NOT_MEASURED} (nvmlInit failed: {exc})"
                return False
        try:
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(nvml_index(self.cuda_index))
            self.name = _text(self._nvml.nvmlDeviceGetName(self._handle))
            self._nvml.nvmlDeviceGetPowerUsage(self._handle)
        except Exception as exc:
            self._handle = None
            self._reason = (f"{NOT_MEASURED} (GPU {self.cuda_index}: power reading "
                            f"unsupported: {exc})")
            return False
        return True

    def available(self) -> tuple[bool, str]:
        """(True, which GPU) when its power can be read, else (False, why not)."""
        if not self._open():
            return False, self._reason
        return True, f"NVML power of {self.name}"

    def _read(self) -> None:
        with self._lock:
            t = self.clock()
            self.samples.append((t, float(self._nvml.nvmlDeviceGetPowerUsage(self._handle))))

    def _counter(self) -> int | None:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # pre-Volta boards, or a binding without the call
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._read()

    def start(self) -> None:
        if not self._open():
            raise RuntimeError(self._reason)
        self.samples = []
        self._counter0 = self._counter()
        self._read()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="nvml-power", daemon=True)
        self._thread.start()

    def sample(self) -> float:
        """Joules so far (the thread samples on its own; no reading is taken here)."""
        return self.joules

    def stop(self) -> float:
        """Joules since :meth:`start`, integrated from the power samples."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._read()
        counter1 = self._counter()
        self.counter_joules = (None if self._counter0 is None or counter1 is None
                               else (counter1 - self._counter0) / 1e3)
        self.seconds = self.samples[-1][0] - self.samples[0][0]
        return self.joules

    @property
    def joules(self) -> float:
        with self._lock:
            return integrate_mw(self.samples)

    @property
    def joules_by_domain(self) -> dict[str, float]:
        return {self.name or f"GPU {self.cuda_index}": self.joules}

    @property
    def median_interval_s(self) -> float | None:
        """The measured spacing of the last window's samples (None with fewer than 2)."""
        gaps = sorted(b[0] - a[0] for a, b in zip(self.samples, self.samples[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else None

    def describe(self) -> str:
        """How the last window was measured, for the result's status text."""
        interval = self.median_interval_s
        text = (f"NVML power of {self.name}, {len(self.samples)} samples"
                + (f" every {interval * 1e3:.1f} ms" if interval is not None else ""))
        if self.counter_joules is not None:
            text += f"; energy counter {self.counter_joules:.3f} J"
        return text
