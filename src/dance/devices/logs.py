"""Reading device logs on the host: the runner's JSON Lines log, the phone's battery samples
and benchmark output, and turning them into latency / power / energy per model.

Formats (the ones the device side writes, see :mod:`dance.devices.device_runner` and
:mod:`dance.devices.drivers`):

* runner log — JSON Lines; records ``header`` (first), ``session``, ``check`` (the device's
  logits and kept counts), ``call`` (with its ``group``), ``window``, ``power`` (``t``
  monotonic s, ``mw`` board power in mW), ``sampling``, from version 3 the per-layer
  latency table's ``table``, ``layer_session`` and ``layer_call``
  (:mod:`dance.devices.layer_table`), ``end`` (last); version 2 logs are read too;
* phone battery samples — one line per sample, ``<uptime s> <current_now µA> <voltage_now µV>
  <status>`` (sysfs units: µA and µV; the current's sign depends on the driver, so its
  magnitude is used);
* phone windows — ``<name> <start uptime s> <end uptime s>`` per benchmark run;
* benchmark output — onnxruntime_perf_test's report (``Total inference requests: N``,
  ``Average inference time cost: X ms``, ``P50 Latency: X s``, ...).

Energy per clip = ∫ P dt over a window (trapezoids over the samples, linearly interpolated at
the window's edges) / clips run in it. A window not covered by samples on both sides, or with
a gap between samples longer than ``GAP_FACTOR`` × the median interval, or of a run whose
sampler failed, gives no energy, with the reason. A model whose outputs on the device differ
from PyTorch's (logits beyond the tolerance, another top-1, or other pruning decisions on
any clip) is reported as ``measured, wrong results`` and gets no speed-up. Every malformed, truncated or empty file raises
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

RECORD_TYPES = ("header", "session", "check", "call", "window", "power", "sampling", "end",
                "table", "layer_session", "layer_call")
READABLE_VERSIONS = (2, LOG_VERSION)    # 2: before the per-layer latency table (no layer records)
GAP_FACTOR = 3.0           # jtop's own timeout is 3 intervals without an update
WRONG = "measured, wrong results"


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
    if header.get("version") not in READABLE_VERSIONS:
        raise DeviceError(f"device log {path} has version {header.get('version')}, "
                          f"this artifact reads versions "
                          f"{', '.join(map(str, READABLE_VERSIONS))}")
    if not out["end"]:
        raise DeviceError(f"device log {path} was cut short (no end record): the run did not "
                          f"finish; re-run it")
    out["header"] = header
    out["end"] = out["end"][-1]
    out["path"] = str(path)
    return out


def check_bundle(log: dict[str, Any], manifest: dict[str, Any], bundle: Path) -> None:
    """DeviceError when `log` was run from another bundle than `manifest`'s (at `bundle`):
    its results could not be checked against this bundle's."""
    ran = log["header"].get("bundle")
    if ran != manifest.get("id"):
        raise DeviceError(f"device log {log['path']} was run from bundle {ran}, the bundle "
                          f"here is {manifest.get('id')} ({bundle}): its results cannot be "
                          f"checked; run the device again on this bundle")


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


def no_energy(status: str) -> dict[str, Any]:
    return {"avg_power_w": None, "energy_j": None, "energy_j_per_clip": None, "status": status}


def window_energy(t: Sequence[float], watts: Sequence[float], window: dict[str, Any],
                  max_gap: float | None = None) -> dict[str, Any]:
    """{avg_power_w, energy_j, energy_j_per_clip, status} of one window record; with
    `max_gap` (s), a longer gap between the samples that span the window gives no energy."""
    start, end, calls = float(window["start"]), float(window["end"]), int(window["calls"])
    joules = integrate(t, watts, start, end)
    if joules is None:
        return no_energy(f"not measured: power samples do not cover the window "
                          f"{start:.3f}–{end:.3f} s ({len(t)} samples)")
    if max_gap is not None:
        ts = np.sort(np.asarray(t, dtype=np.float64))
        lo = max(int(np.searchsorted(ts, start, side="right")) - 1, 0)
        hi = int(np.searchsorted(ts, end, side="left"))
        gap = float(np.diff(ts[lo:hi + 1]).max()) if hi > lo else 0.0
        if gap > max_gap:
            return no_energy(f"not measured: a gap of {gap:.3f} s between power samples in "
                              f"the window {start:.3f}–{end:.3f} s (more than {max_gap:.3f} s)")
    return {"avg_power_w": joules / (end - start), "energy_j": joules,
            "energy_j_per_clip": joules / calls if calls else None, "status": "measured"}


def sampling_interval(t: Sequence[float]) -> float | None:
    """Median interval between consecutive power samples (s), as measured."""
    d = np.diff(np.sort(np.asarray(t, dtype=np.float64)))
    d = d[d > 0]
    return float(np.median(d)) if d.size else None


def check_results(check: dict[str, Any] | None, logits: np.ndarray, kept: np.ndarray | None,
                  tolerance: float) -> dict[str, Any]:
    """The device's outputs (a ``check`` record) against PyTorch's: max |Δ logits|, top-1 and
    decision agreement, and ``wrong`` (None, or why the results are wrong). Logits may differ
    by ``tolerance`` × max(1, largest |reference logit|)."""
    if check is None or check.get("logits") is None:
        return {"max_abs_diff": None, "clips_with_other_decisions": None,
                "wrong": "the log holds no outputs of this model"}
    got = np.asarray(check["logits"], dtype=np.float64)
    ref = np.asarray(logits, dtype=np.float64)
    if got.shape != ref.shape:
        return {"max_abs_diff": None, "clips_with_other_decisions": None,
                "wrong": f"logits of shape {list(got.shape)}, PyTorch's are {list(ref.shape)}"}
    diff = float(np.abs(got - ref).max())
    limit = tolerance * max(1.0, float(np.abs(ref).max()))
    other = None
    if kept is not None:
        dev = np.asarray(check.get("kept") or [], dtype=np.float64)
        other = (int(sum(not np.array_equal(a, b) for a, b in zip(dev, kept, strict=True)))
                 if dev.shape == np.shape(kept) else len(kept))
    wrong = []
    if diff > limit:
        wrong.append(f"logits differ from PyTorch's by {diff:.3g} (tolerance {limit:.3g})")
    if not np.array_equal(got.argmax(1), ref.argmax(1)):
        wrong.append("another top-1 class on some clip")
    if other:
        wrong.append(f"other pruning decisions on {other} of {len(kept)} clips")
    return {"max_abs_diff": diff, "clips_with_other_decisions": other,
            "wrong": "; ".join(wrong) or None}


def summarise_runner_log(log: dict[str, Any], reference: dict[str, np.ndarray],
                         tolerance: float) -> dict[str, Any]:
    """Per model: latency (median/IQR of the timed calls), speed-up vs the same backbone's
    dense model timed in the same groups, its execution providers, its outputs checked
    against `reference` (PyTorch's logits ``name`` and kept counts ``name#kept``), and from
    the power windows average power, energy per clip and idle power."""
    header = log["header"]
    t = [float(r["t"]) for r in log["power"]]
    watts = [float(r["mw"]) / 1e3 for r in log["power"]]
    interval = sampling_interval(t)
    max_gap = GAP_FACTOR * interval if interval else None
    power_note = header.get("power", {})
    power_error = log["end"].get("power_error")
    idle = next((w for w in log["window"] if w.get("idle")), None)
    idle_w = (window_energy(t, watts, idle, max_gap)["avg_power_w"]
              if idle and t and not power_error else None)
    checks = {c["model"]: c for c in log["check"]}
    providers = {}
    for rec in log["session"]:
        providers.setdefault(rec["model"], rec.get("providers"))
    rows = {}
    for name in header["models"]:
        calls = [c for c in log["call"] if c["model"] == name]
        if not calls:
            raise DeviceError(f"device log {log['path']} has no timed call of {name}")
        s = summarise([float(c["seconds"]) for c in calls])
        row = {"median_ms": s["median"] * 1e3, "p25_ms": s["p25"] * 1e3,
               "p75_ms": s["p75"] * 1e3, "iqr_ms": s["iqr"] * 1e3, "n": s["n"],
               "providers": providers.get(name), "groups": sorted({c.get("group", 0)
                                                                   for c in calls})}
        if name not in reference:
            raise DeviceError(f"the bundle's reference has no outputs of {name} (device log "
                              f"{log['path']})")
        row.update(check_results(checks.get(name), reference[name],
                                 reference.get(f"{name}#kept"), tolerance))
        window = next((w for w in log["window"] if w.get("model") == name), None)
        if not t:
            energy = no_energy("not measured: " + power_note.get("reason", "no power samples"))
        elif power_error:
            energy = no_energy(f"not measured: power sampling failed ({power_error})")
        elif window is None:
            energy = no_energy(f"not measured: no power window of {name} in the log")
        else:
            energy = window_energy(t, watts, window, max_gap)
        row.update(energy)
        row["idle_power_w"] = idle_w
        rows[name] = row
    for name, row in rows.items():
        dense_name = f"{name.split(':')[0]}:dense"
        groups = set(row["groups"])
        dense = [float(c["seconds"]) for c in log["call"]
                 if c["model"] == dense_name and c.get("group", 0) in groups]
        mine = summarise([float(c["seconds"]) for c in log["call"] if c["model"] == name])
        row["speedup_vs_dense"] = (summarise(dense)["median"] / mine["median"]
                                   if dense and mine["median"] > 0 and not row["wrong"]
                                   and not rows.get(dense_name, {}).get("wrong") else None)
    return {"header": header, "models": rows,
            "sampling": {"samples": len(t), "interval_measured_s": interval,
                         "records": log["sampling"], "error": power_error}}


# --- phone ------------------------------------------------------------------------------------

_PERF_FIELDS = {
    "requests": re.compile(r"Total inference requests:\s*(\d+)"),
    "average_ms": re.compile(r"Average inference time cost(?: total)?:\s*([0-9.eE+-]+)\s*ms"),
    "min_s": re.compile(r"Min Latency:\s*([0-9.eE+-]+)\s*s"),
    "max_s": re.compile(r"Max Latency:\s*([0-9.eE+-]+)\s*s"),
    "run_s": re.compile(r"Total inference run time:\s*([0-9.eE+-]+)\s*s"),
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


VOLTS_RANGE = (2.5, 5.5)      # a Li-ion cell (or a 2-cell pack's per-cell reading), V
AMPS_RANGE = (0.01, 20.0)     # a phone that runs: 10 mA – 20 A, A


def read_battery(path: str | Path) -> dict[str, list]:
    """Battery samples → {t (s), watts (W), status}; W = |current_now µA| · voltage_now µV.
    The units are checked: median voltage and |current| must be plausible for a phone, or a
    DeviceError says the driver reports another unit (a mV/mA driver would otherwise give
    energies 1000× off)."""
    path = Path(path)
    lines = _read(path, "battery samples").splitlines()
    t, w, status, amps_raw, volts_raw = [], [], [], [], []
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
        amps_raw.append(micro_amps)
        volts_raw.append(micro_volts)
        w.append(abs(micro_amps) * micro_volts * 1e-12)
        status.append(parts[3] if len(parts) > 3 else "")
    if not t:
        raise DeviceError(f"battery samples {path} are empty")
    volts = float(np.median(volts_raw)) * 1e-6
    amps = float(np.median(np.abs(amps_raw))) * 1e-6
    if not VOLTS_RANGE[0] <= volts <= VOLTS_RANGE[1]:
        raise DeviceError(f"battery samples {path}: median voltage_now {volts * 1e6:.0f} is "
                          f"{volts:.4g} V read as µV, not a phone battery's "
                          f"{VOLTS_RANGE[0]}–{VOLTS_RANGE[1]} V: the driver reports another "
                          f"unit; fix devices.snapdragon.battery_dir or convert the file")
    if not AMPS_RANGE[0] <= amps <= AMPS_RANGE[1]:
        raise DeviceError(f"battery samples {path}: median |current_now| {amps * 1e6:.0f} is "
                          f"{amps * 1e3:.4g} mA read as µA, outside a running phone's "
                          f"{AMPS_RANGE[0] * 1e3:.0f} mA–{AMPS_RANGE[1]:.0f} A: the driver "
                          f"reports another unit")
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
