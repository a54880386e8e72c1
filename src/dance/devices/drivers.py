"""`python -m dance device --device jetson_nano|snapdragon`: measure on a device, or ingest
its logs, or record that it was not measured.

Three cases, in this order:

1. the device is configured (``devices.jetson_nano.ssh`` / ``devices.snapdragon.adb_serial``):
   the host drives it — copies the bundle, runs it there, fetches the logs into
   ``Paths.device_logs(device)`` — then ingests them. A failure stops with a DeviceError;
2. logs placed by hand in ``Paths.device_logs(device)`` (the same files the driver fetches):
   the newest run is ingested;
3. neither: the result says "not measured: no device configured".

Then, from the device's newest runner log (``*.jsonl`` in ``Paths.device_logs(device)``;
a Jetson's run, or a runner run by hand on a phone), each model's per-layer latency table
is written to ``Paths.device_latency_table`` (:mod:`dance.devices.layer_table`); the
result's ``latency_tables`` says per model where, or "not measured" and why.

Jetson Nano (ssh): the bundle and :mod:`dance.devices.device_runner` go to ``remote_dir``;
the runner writes ``run-<UTC time>.jsonl``, which is fetched.

Snapdragon (adb): per model a folder ``<name>/model.onnx`` with the clips as
``test_data_set_<i>/input_0.pb`` (the layout onnxruntime_perf_test reads its inputs from),
the benchmark binary, and a shell script (:func:`phone_script`) that samples
``current_now``/``voltage_now``/``status`` of the battery every ``sample_interval_s`` into
``power.txt`` while it runs an idle window and then the binary once per model (each run's
uptime window into ``windows.txt``, its report into ``perf_<name>.txt``). Charging is
suspended around the run through ``charge_control`` (root); energy is reported only when
every sample of a window says ``Discharging``. ``header.json`` records the phone and what
was done.
"""

from __future__ import annotations

import datetime as dt
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dance.devices import layer_table, logs
from dance.errors import DeviceError
from dance.io import atomic_path, read_json, write_json
from dance.paths import Paths
from dance.plan import DEVICE_CONNECTION, device_driven

DEVICES = tuple(DEVICE_CONNECTION)
PAPER_SPEEDUP = {"jetson_nano": 1.37, "snapdragon": 2.22}   # DANCE abstract (arXiv 2603.17275)
NOT_CONFIGURED = "not measured: no device configured"


def _run(cmd: list[str], what: str, timeout: float, capture: bool = False) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise DeviceError(f"{what}: {cmd[0]} not found on this host") from None
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{what}: no answer within {timeout:.0f} s ({shlex.join(cmd)})") from None
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise DeviceError(f"{what} failed (exit {res.returncode}): {shlex.join(cmd)}: "
                          f"{' | '.join(tail)}")
    return res.stdout if capture else ""


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def safe_name(name: str) -> str:
    """File-system name of a bundle model (``c3d:dance@0`` → ``c3d_dance_0``)."""
    return name.replace(":", "_").replace("@", "_")


# --- Jetson Nano --------------------------------------------------------------------------

def jetson_commands(devices: dict, bundle: Path, log_name: str) -> dict[str, list[str]]:
    """The ssh/scp command lines of one Jetson run (mkdir, copy, run, fetch), from the
    config's `devices` section."""
    j = devices["jetson_nano"]
    dest, opts, remote = j["ssh"], list(j["ssh_options"]), j["remote_dir"]
    manifest = read_json(bundle / "manifest.json")
    files = [bundle / n for n in ("manifest.json", manifest["clips"], manifest["reference"],
                                  manifest["runner"])] + [bundle / m["file"]
                                                          for m in manifest["models"]]
    files += [bundle / f for f in layer_table.table_files(manifest)]
    runner = " ".join(shlex.quote(str(a)) for a in [
        j["python"], manifest["runner"], "--bundle", ".", "--out", log_name,
        "--device", "jetson_nano", "--power", j["power"], "--warmup", devices["warmup"],
        "--repeats", devices["repeats"], "--window", devices["energy_window_s"],
        "--threads", j["threads"], "--providers", j["providers"],
        "--max-sessions", j["max_sessions"], "--table-max-sessions", j["table_max_sessions"]])
    return {
        "mkdir": ["ssh", *opts, dest, f"mkdir -p {shlex.quote(remote)}"],
        "copy": ["scp", "-q", *opts, *map(str, files), f"{dest}:{remote}/"],
        "run": ["ssh", *opts, dest, f"cd {shlex.quote(remote)} && {runner}"],
        "fetch": ["scp", "-q", *opts, f"{dest}:{remote}/{log_name}"],
    }


def drive_jetson(devices: dict, paths: Paths) -> Path:
    """Run the bundle of `paths` on the Jetson over ssh; returns the fetched log."""
    j = devices["jetson_nano"]
    log_name = f"run-{_stamp()}.jsonl"
    cmds = jetson_commands(devices, paths.device_bundle, log_name)
    _run(cmds["mkdir"], f"ssh to the Jetson ({j['ssh']})", 120)
    _run(cmds["copy"], "copying the bundle to the Jetson", 1800)
    _run(cmds["run"], "the runner on the Jetson", j["timeout_s"])
    out = paths.device_logs("jetson_nano") / log_name
    with atomic_path(out) as tmp:
        _run([*cmds["fetch"], str(tmp)], "fetching the Jetson log", 600)
    return out


def bundle_reference(bundle: Path, log: dict[str, Any]) -> dict[str, np.ndarray]:
    """PyTorch's outputs in the bundle the log was run from; DeviceError when the log is
    from another bundle (its results could not be checked)."""
    manifest = read_json(bundle / "manifest.json")
    logs.check_bundle(log, manifest, bundle)
    with np.load(bundle / manifest["reference"]) as ref:
        return {k: ref[k] for k in ref.files}


def ingest_jetson(folder: Path, bundle: Path, tolerance: float) -> dict[str, Any] | None:
    """The newest runner log in `folder`, checked against `bundle` and summarised; None
    when there is none."""
    found = sorted(folder.glob("*.jsonl"), key=lambda p: (p.stat().st_mtime, p.name))
    if not found:
        return None
    log = logs.read_runner_log(found[-1])
    summary = logs.summarise_runner_log(log, bundle_reference(bundle, log), tolerance)
    power = summary["header"].get("power", {})
    return {"log": str(found[-1]), "header": summary["header"], "models": summary["models"],
            "power_source": power.get("source"), "nvpmodel": power.get("nvpmodel"),
            "jetson_clocks": power.get("jetson_clocks"), "sampling": summary["sampling"]}


# --- Snapdragon ---------------------------------------------------------------------------

def phone_script(devices: dict, names: list[str]) -> str:
    """POSIX sh run on the phone (module docstring), from the config's `devices` section;
    `names` are safe model names."""
    s = devices["snapdragon"]
    q = shlex.quote
    args = s["benchmark_args"].format(runs=s["runs"], threads=s["threads"])
    lines = [
        "#!/system/bin/sh",
        "# DANCE phone run (written by dance.devices.drivers.phone_script)",
        f"cd {q(s['remote_dir'])} || exit 2",
        "rm -f power.txt windows.txt perf_*.txt done.txt",
        f"BAT={q(s['battery_dir'])}",
        "up() { read -r u _ < /proc/uptime; echo \"$u\"; }",
        "( while :; do echo \"$(up) $(cat $BAT/current_now) $(cat $BAT/voltage_now) "
        f"$(cat $BAT/status)\"; sleep {s['sample_interval_s']}; done ) > power.txt &",
        "SAMPLER=$!",
        "sleep 1",
        f"S=$(up); sleep {devices['energy_window_s']}; E=$(up)",
        "echo \"idle $S $E\" >> windows.txt",
    ]
    for name in names:
        lines += [f"S=$(up); ./benchmark {args} {q(name)}/model.onnx > {q('perf_' + name + '.txt')}"
                  " 2>&1; RC=$?; E=$(up)",
                  f"echo \"{name} $S $E\" >> windows.txt",
                  f"[ $RC -eq 0 ] || echo \"exit $RC\" >> {q('perf_' + name + '.txt')}"]
    lines += ["sleep 1", "kill $SAMPLER", "echo done > done.txt", ""]
    return "\n".join(lines)


def stage_phone_bundle(bundle: Path, out: Path) -> list[str]:
    """Per model: ``<safe name>/model.onnx`` + ``test_data_set_<i>/input_0.pb`` (one clip
    each) under `out`; returns the safe names."""
    from onnx import numpy_helper

    manifest = read_json(bundle / "manifest.json")
    clips = np.load(bundle / manifest["clips"])
    names = []
    for m in manifest["models"]:
        name = safe_name(m["name"])
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle / m["file"], folder / "model.onnx")
        for i in range(len(clips)):
            data = folder / f"test_data_set_{i}"
            data.mkdir(exist_ok=True)
            tensor = numpy_helper.from_array(clips[i:i + 1], name="clip")
            (data / "input_0.pb").write_bytes(tensor.SerializeToString())
        names.append(name)
    return names


def drive_snapdragon(devices: dict, paths: Paths) -> Path:
    """Push the models and clips of `paths`'s bundle, the binary and the script to the
    phone, run, pull the logs; returns the folder holding them."""
    s = devices["snapdragon"]
    if not s["benchmark_binary"]:
        raise DeviceError("config key 'devices.snapdragon.benchmark_binary' is not set: the "
                          "phone needs a benchmark binary (onnxruntime_perf_test for Android)")
    binary = Path(s["benchmark_binary"])
    if not binary.is_file():
        raise DeviceError(f"benchmark binary {binary} (devices.snapdragon.benchmark_binary) "
                          f"does not exist")
    adb = [s["adb"], "-s", s["adb_serial"]]
    remote = s["remote_dir"]
    out = paths.device_logs("snapdragon") / f"run-{_stamp()}"
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        names = stage_phone_bundle(paths.device_bundle, stage)
        (stage / "run.sh").write_text(phone_script(devices, names))
        shutil.copyfile(binary, stage / "benchmark")
        header = {"device": "snapdragon", "serial": s["adb_serial"], "models": names,
                  "bundle": read_json(paths.device_bundle / "manifest.json")["models"],
                  "runs": s["runs"], "benchmark_binary": str(binary),
                  "benchmark_args": s["benchmark_args"], "started": _stamp()}
        for prop in ("ro.product.model", "ro.soc.model", "ro.board.platform",
                     "ro.build.version.release"):
            header[prop] = _run([*adb, "shell", "getprop", prop], "adb getprop", 60,
                                capture=True).strip()
        _run([*adb, "shell", f"rm -rf {shlex.quote(remote)} && mkdir -p {shlex.quote(remote)}"],
             "adb mkdir", 120)
        for item in sorted(stage.iterdir()):
            _run([*adb, "push", str(item), f"{remote}/"], f"adb push {item.name}", 1800)
        _run([*adb, "shell", f"chmod 755 {shlex.quote(remote)}/benchmark"], "adb chmod", 60)
        header["charge_control"] = _charging(adb, s["charge_control"], "1")
        try:
            _run([*adb, "shell", f"sh {shlex.quote(remote)}/run.sh"], "the phone run",
                 s["timeout_s"])
        finally:
            header["charge_restore"] = _charging(adb, s["charge_control"], "0")
        out.mkdir(parents=True, exist_ok=True)
        files = ["power.txt", "windows.txt", *[f"perf_{n}.txt" for n in names]]
        for name in files:
            with atomic_path(out / name) as local:
                _run([*adb, "pull", f"{remote}/{name}", str(local)], f"adb pull {name}", 600)
        header["finished"] = _stamp()
        write_json(out / "header.json", header)
    return out


def _charging(adb: list[str], control: str | None, value: str) -> str:
    """Write `value` to the charge-control switch as root; returns what happened."""
    if not control:
        return "no charge control configured"
    try:
        _run([*adb, "shell", f"su -c 'echo {value} > {shlex.quote(control)}'"],
             "suspending charging", 60)
    except DeviceError as exc:
        return f"failed: {exc}"
    return f"wrote {value} to {control}"


def ingest_snapdragon(folder: Path) -> dict[str, Any] | None:
    """The newest phone run under `folder` (a ``run-*`` folder with ``header.json``, or
    the files directly in `folder`), summarised; None when there is none."""
    runs = sorted((p.parent for p in folder.glob("**/header.json")),
                  key=lambda p: (p.stat().st_mtime, p.name))
    if not runs:
        return None
    run = runs[-1]
    header = read_json(run / "header.json")
    windows = logs.read_windows(run / "windows.txt")
    battery = logs.read_battery(run / "power.txt")
    rows = {}
    for name, entry in zip(header["models"], header["bundle"], strict=True):
        perf = logs.parse_perf_test(run / f"perf_{name}.txt")
        row = {"median_ms": perf["p50_s"] * 1e3, "p25_ms": None, "p75_ms": None,
               "iqr_ms": None, "n": int(perf["requests"]), "p90_ms": perf.get("p90_s", 0) * 1e3,
               "providers": ["CPUExecutionProvider"], "max_abs_diff": None,
               "clips_with_other_decisions": None, "wrong": None,
               "results_check": "not checked: onnxruntime_perf_test reports no outputs"}
        window = windows.get(name)
        if window is None:
            energy = logs.no_energy(f"not measured: no run window of {name}")
        elif "run_s" not in perf:
            energy = logs.no_energy(f"not measured: perf_{name}.txt has no 'Total inference "
                                     "run time' line, so the timed part of the run is unknown")
        else:
            # the timed requests are the last `run_s` seconds of the binary's run: session
            # creation and the warm-up inference before them are left out
            timed = {"start": window["end"] - perf["run_s"], "end": window["end"],
                     "calls": perf["requests"]}
            statuses = {st for t, st in zip(battery["t"], battery["status"], strict=True)
                        if timed["start"] <= t <= timed["end"]}
            energy = logs.window_energy(battery["t"], battery["watts"], timed)
            if energy["status"] == "measured" and statuses != {"Discharging"}:
                energy = logs.no_energy(
                    "not measured: battery status during the run was "
                    f"{', '.join(sorted(statuses)) or 'unknown'} (charging not suspended)")
        row.update(energy)
        rows[entry["name"]] = row
    for name, row in rows.items():
        dense = rows.get(f"{name.split(':')[0]}:dense")
        row["speedup_vs_dense"] = (dense["median_ms"] / row["median_ms"]
                                   if dense and row["median_ms"] > 0 else None)
    idle = windows.get("idle")
    idle_w = (logs.window_energy(battery["t"], battery["watts"], {**idle, "calls": 0})
              ["avg_power_w"] if idle else None)
    for row in rows.values():
        row["idle_power_w"] = idle_w
    return {"log": str(run), "header": header, "models": rows, "power_source": "battery"}


# --- one entry point ------------------------------------------------------------------------

def measure_device(cfg: dict, device: str) -> Path:
    """Drive, ingest or record "not measured" (module docstring); writes
    ``Paths.device_result(device)`` and returns it."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    paths = Paths(cfg)
    folder = paths.device_logs(device)
    configured = device_driven(cfg, device)
    if configured:
        (drive_jetson if device == "jetson_nano" else drive_snapdragon)(cfg["devices"], paths)
    if not folder.exists():
        found = None
    elif device == "jetson_nano":
        found = ingest_jetson(folder, paths.device_bundle, cfg["devices"]["result_tolerance"])
    else:
        found = ingest_snapdragon(folder)
    if found is None:
        result: dict[str, Any] = {"device": device, "status": NOT_CONFIGURED,
                                  "paper_speedup": PAPER_SPEEDUP[device], "models": {}}
    else:
        result = {"device": device, "status": "measured",
                  "source": "driven from this host" if configured else "logs placed by hand",
                  "paper_speedup": PAPER_SPEEDUP[device], **found}
    # the per-layer latency tables of the device's newest runner log; none without one
    result["latency_tables"] = (layer_table.write_device_tables(paths, device, cfg["models"])
                                if folder.exists() else
                                {m: "not measured: no runner log of this device"
                                 for m in cfg["models"]})
    write_json(paths.device_result(device), result)
    return paths.device_result(device)
