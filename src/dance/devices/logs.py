"""Reading device logs on the host: the runner's JSON Lines log, the phone's battery samples
and benchmark output, and turning them into latency / power / energy per model.

Formats (the ones the device side writes, see :mod:`dance.devices.device_runner` and
:mod:`dance.devices.drivers`):

* runner log — JSON Lines; records ``header`` (first), ``check``, ``call``, ``window``,
  ``power`` (``t`` monotonic s, ``mw`` board power in mW), ``end`` (last);
* phone battery samples — one line per sample, ``<uptime s> <current_now µA> <voltage_now µV>
  <status>`` (sysfs units: µA and µV; the current's sign depends on the driver, so its
  magnitude is used);
* phone windows — ``<name> <start uptime s> <end uptime s>`` per benchmark run;
* benchmark output — onnxruntime_perf_test's report (``Total inference requests: N``,
  ``Average inference time cost: X ms``, ``P50 Latency: X s``, ...).

Energy per clip = ∫ P dt over a window (trapezoids over the samples, linearly interpolated at
the window's edges) / clips run in it. A window not covered by samples on both sides gives no
energy, with the reason. Every malformed, truncated or empty file raises
:class:`~dance.errors.DeviceError` naming the file (and line).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dance.devices.device_runner import LOG_FORMAT, LOG_VERSION
from dance.errors import DeviceError
from dance.measure.stats import summarise

RECORD_TYPES = ("header", "check", "call", "window", "power", "end")


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise DeviceError(f"cannot read {what} {path}: {exc.strerror}") from None


def read_runner_log(path: str | Path) -> dict[str, Any]:
    """The records of a runner log, grouped by type; DeviceError naming the file when it is
    empty, not the runner's format, cut short (no ``end``) or has a malformed line."""
    path = Path(path)
    lines = _read(path, "device log").splitlines()
    if not any(line.strip() for line in lines):
        raise DeviceError(f"device log {path} is empty")
    out: dict[str, Any] = {t: [] for t in RECORD_TYPES}
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise DeviceError(f"device log {path} line {no} is not a complete JSON record "
                              f"(truncated log?): {line[:80]!r}") from None
        kind = rec.get("type") if isinstance(rec, dict) else None
        if kind not in RECORD_TYPES:
            raise DeviceError(f"device log {path} line {no}: unknown record type {kind!r}")
        if no == 1 and kind != "header":
            raise DeviceError(f"device log {path} does not start with a header record")
        out[kind].append(rec)
    header = out["header"][0] if out["header"] else None
    if header is None or header.get("format") != LOG_FORMAT:
        raise DeviceError(f"device log {path} is not a {LOG_FORMAT} log")
    if header.get("version") != LOG_VERSION:
        raise DeviceError(f"device log {path} has version {header.get('version')}, "
                          f"this artifact reads version {LOG_VERSION}")
    if not out["end"]:
        raise DeviceError(f"device log {path} was cut short (no end record): the run did not "
                          f"finish; re-run it")
    out["header"] = header
    out["end"] = out["end"][-1]
    out["path"] = str(path)
    return out


def integrate(t: Sequence[float], watts: Sequence[float], start: float, end: float,
              ) -> float | None:
    """Joules of the power samples (t s, W) over [start, end]; None unless the samples
    reach from ≤ start to ≥ end. Trapezoids; the edges are linearly interpolated."""
    t = np.asarray(t, dtype=np.float64)
    p = np.asarray(watts, dtype=np.float64)
    if t.size < 2 or end <= start or t[0] > start or t[-1] < end:
        return None
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    inside = (t > start) & (t < end)
    ts = np.concatenate([[start], t[inside], [end]])
    ps = np.concatenate([[np.interp(start, t, p)], p[inside], [np.interp(end, t, p)]])
    return float(np.sum((ps[1:] + ps[:-1]) * np.diff(ts)) / 2.0)


def window_energy(t: Sequence[float], watts: Sequence[float], window: dict[str, Any],
                  ) -> dict[str, Any]:
    """{avg_power_w, energy_j, energy_j_per_clip, status} of one window record."""
    start, end, calls = float(window["start"]), float(window["end"]), int(window["calls"])
    joules = integrate(t, watts, start, end)
    if joules is None:
        return {"avg_power_w": None, "energy_j": None, "energy_j_per_clip": None,
                "status": f"not measured: power samples do not cover the window "
                          f"{start:.3f}–{end:.3f} s ({len(t)} samples)"}
    return {"avg_power_w": joules / (end - start), "energy_j": joules,
            "energy_j_per_clip": joules / calls if calls else None, "status": "measured"}


def summarise_runner_log(log: dict[str, Any]) -> dict[str, Any]:
    """Per model: latency (median/IQR of the timed calls), speed-up vs the same backbone's
    dense model, and from the power windows average power, energy per clip and clips per J."""
    header = log["header"]
    t = [float(r["t"]) for r in log["power"]]
    watts = [float(r["mw"]) / 1e3 for r in log["power"]]
    power_note = header.get("power", {})
    idle = next((w for w in log["window"] if w.get("idle")), None)
    idle_w = window_energy(t, watts, idle)["avg_power_w"] if idle and t else None
    checks = {c["model"]: c for c in log["check"]}
    rows = {}
    for name in header["models"]:
        secs = [float(c["seconds"]) for c in log["call"] if c["model"] == name]
        if not secs:
            raise DeviceError(f"device log {log['path']} has no timed call of {name}")
        s = summarise(secs)
        row = {"median_ms": s["median"] * 1e3, "p25_ms": s["p25"] * 1e3,
               "p75_ms": s["p75"] * 1e3, "iqr_ms": s["iqr"] * 1e3, "n": s["n"],
               "max_abs_diff_vs_pytorch": checks.get(name, {}).get("max_abs_diff")}
        window = next((w for w in log["window"] if w.get("model") == name), None)
        if not t:
            energy = {"avg_power_w": None, "energy_j": None, "energy_j_per_clip": None,
                      "status": "not measured: " + power_note.get("reason", "no power samples")}
        elif window is None:
            energy = {"avg_power_w": None, "energy_j": None, "energy_j_per_clip": None,
                      "status": f"not measured: no power window of {name} in the log"}
        else:
            energy = window_energy(t, watts, window)
        row.update(energy)
        row["idle_power_w"] = idle_w
        rows[name] = row
    for name, row in rows.items():
        model = name.split(":")[0]
        dense = rows.get(f"{model}:dense")
        row["speedup_vs_dense"] = (dense["median_ms"] / row["median_ms"]
                                   if dense and row["median_ms"] > 0 else None)
    return {"header": header, "models": rows}


# --- phone ------------------------------------------------------------------------------------

_PERF_FIELDS = {
    "requests": re.compile(r"Total inference requests:\s*(\d+)"),
    "average_ms": re.compile(r"Average inference time cost(?: total)?:\s*([0-9.eE+-]+)\s*ms"),
    "min_s": re.compile(r"Min Latency:\s*([0-9.eE+-]+)\s*s"),
    "max_s": re.compile(r"Max Latency:\s*([0-9.eE+-]+)\s*s"),
    "p50_s": re.compile(r"P50 Latency:\s*([0-9.eE+-]+)\s*s"),
    "p90_s": re.compile(r"P90 Latency:\s*([0-9.eE+-]+)\s*s"),
    "p95_s": re.compile(r"P95 Latency:\s*([0-9.eE+-]+)\s*s"),
    "p99_s": re.compile(r"P99 Latency:\s*([0-9.eE+-]+)\s*s"),
}


def parse_perf_test(path: str | Path) -> dict[str, float]:
    """onnxruntime_perf_test's report in `path` → {requests, average_ms, min_s, max_s, p50_s,
    p90_s, p95_s, p99_s}; DeviceError naming the file when a needed line is missing."""
    path = Path(path)
    text = _read(path, "benchmark output")
    if not text.strip():
        raise DeviceError(f"benchmark output {path} is empty")
    out: dict[str, float] = {}
    for key, rx in _PERF_FIELDS.items():
        m = rx.search(text)
        if m:
            out[key] = float(m.group(1))
    missing = [k for k in ("requests", "p50_s") if k not in out]
    if missing:
        raise DeviceError(f"benchmark output {path} has no "
                          f"{' / '.join(missing)} line (not onnxruntime_perf_test output, or "
                          f"the run failed): {text.strip().splitlines()[-1][:120]!r}")
    return out


def read_battery(path: str | Path) -> dict[str, list]:
    """Battery samples → {t (s), watts (W), status}; W = |current_now µA| · voltage_now µV."""
    path = Path(path)
    lines = _read(path, "battery samples").splitlines()
    t, w, status = [], [], []
    for no, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3:
            raise DeviceError(f"battery samples {path} line {no}: expected '<uptime s> "
                              f"<current µA> <voltage µV> [status]', got {line!r}")
        try:
            secs, micro_amps, micro_volts = float(parts[0]), int(parts[1]), int(parts[2])
        except ValueError:
            raise DeviceError(f"battery samples {path} line {no}: not numbers: {line!r}") from None
        t.append(secs)
        w.append(abs(micro_amps) * micro_volts * 1e-12)
        status.append(parts[3] if len(parts) > 3 else "")
    if not t:
        raise DeviceError(f"battery samples {path} are empty")
    return {"t": t, "watts": w, "status": status}


def read_windows(path: str | Path) -> dict[str, dict[str, float]]:
    """Phone run windows: name → {start, end} (uptime seconds)."""
    path = Path(path)
    lines = _read(path, "run windows").splitlines()
    out = {}
    for no, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise DeviceError(f"run windows {path} line {no}: expected '<name> <start> <end>' "
                              f"(truncated?), got {line!r}")
        try:
            out[parts[0]] = {"start": float(parts[1]), "end": float(parts[2])}
        except ValueError:
            raise DeviceError(f"run windows {path} line {no}: not numbers: {line!r}") from None
    if not out:
        raise DeviceError(f"run windows {path} are empty")
    return out
