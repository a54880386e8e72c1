#!/usr/bin/env python3
"""DANCE device runner: times the exported models on this device and logs power samples.

Self-contained on purpose: it is copied to the device (a Jetson Nano on JetPack 4.6 runs
Python 3.6) and needs only numpy, onnxruntime and, for power, jetson-stats (``jtop``). It
must stay Python 3.6 syntax (a test parses it with ``feature_version=(3, 6)``) and must not
import the ``dance`` package.

    python3 device_runner.py --bundle BUNDLE_DIR --out LOG.jsonl [--power auto|jtop|none]

The bundle (written by ``python -m dance export-onnx``) holds ``manifest.json``, the ONNX
models, the test clips (``clips.npy``) and PyTorch's logits of those clips
(``reference.npz``). The runner

1. checks every model against PyTorch's logits on every clip (max |diff| logged);
2. times all models interleaved at batch 1: ``warmup`` untimed rounds, then ``repeats``
   passes over the clips, each round running every model once in an order rotated per
   round (drift falls on every model alike);
3. runs an idle window, then each model alone for ``window_s`` seconds (cycling the clips),
   while a thread logs timestamped power samples; the host integrates them over each window.

Power: on a Jetson through jtop — total board power is the ``POM_5V_IN`` rail (``VDD_IN`` on
later modules), never the sum of the CPU/GPU rails; the nvpmodel mode and jetson_clocks state
are recorded. Without jtop (or when its service is not running) no power is logged and the
header says why.

Log: JSON Lines, one record per line, flushed as written; ``type`` is one of ``header``,
``check``, ``call``, ``window``, ``power``, ``end``. A log without its ``end`` record was cut
short. Times: ``t``/``start``/``end`` are ``time.monotonic()`` seconds (one clock for the
samples and the windows); ``seconds`` of a call is its ``time.perf_counter()`` duration.
"""

import argparse
import json
import os
import platform
import sys
import threading
import time

LOG_FORMAT = "dance-device-log"
LOG_VERSION = 1
BOARD_RAILS = ("POM_5V_IN", "VDD_IN")     # total board input (Nano; later Jetson modules)


class Log(object):
    """Thread-safe JSON Lines writer (each record flushed at once)."""

    def __init__(self, path):
        self.fh = open(path, "w")
        self.lock = threading.Lock()

    def write(self, record):
        line = json.dumps(record, sort_keys=True)
        with self.lock:
            self.fh.write(line + "\n")
            self.fh.flush()

    def close(self):
        self.fh.close()


def jtop_power(power):
    """(board power in mW, rail name, {rail: mW}) from jtop's ``jetson.power``.

    jetson-stats >= 4: ``{'rail': {NAME: {'volt' mV, 'curr' mA, 'power' mW, 'avg' mW, ...}},
    'tot': {'power' mW, 'avg' mW, 'name': 'POM_5V_IN', ...}}`` — the board input rail is
    moved out of 'rail' into 'tot' and named there; without one, 'tot' is a sum of rails
    (no 'name'), which is not the board power. jetson-stats 3.x: a tuple ``(total, rails)``
    with ``total = {'cur' mW, 'avg' mW}`` and ``rails = {NAME: {'cur', 'avg'}}``. Raises
    ValueError for anything else, or when the board input rail is not there.
    """
    if isinstance(power, dict) and "tot" in power:
        tot = power["tot"]
        rails = dict((k, float(v["power"])) for k, v in power.get("rail", {}).items()
                     if isinstance(v, dict) and "power" in v)
        name = tot.get("name")
        if name not in BOARD_RAILS:
            for rail in BOARD_RAILS:
                if rail in rails:
                    return rails[rail], rail, rails
            raise ValueError("jtop reports no board input rail (%s); rails: %s"
                             % (", ".join(BOARD_RAILS), ", ".join(sorted(rails)) or "none"))
        return float(tot["power"]), name, rails
    if isinstance(power, (tuple, list)) and len(power) == 2 and isinstance(power[1], dict):
        total, rails_raw = power
        rails = dict((k, float(v["cur"])) for k, v in rails_raw.items()
                     if isinstance(v, dict) and "cur" in v)
        for rail in BOARD_RAILS:
            if rail in rails:
                return rails[rail], rail, rails
        if isinstance(total, dict) and "cur" in total:
            # jetson-stats 3.x takes the POM_5V_IN entry of tegrastats as the total
            return float(total["cur"]), "POM_5V_IN", rails
    raise ValueError("unrecognised jtop power format: %r" % (power,))


def jtop_state(jetson):
    """nvpmodel mode and jetson_clocks state as jtop reports them (both versions)."""
    out = {}
    try:
        out["nvpmodel"] = str(jetson.nvpmodel)
    except Exception as exc:                       # noqa: BLE001 - recorded, not fatal
        out["nvpmodel"] = "unknown (%s)" % exc
    try:
        jc = jetson.jetson_clocks
        status = getattr(jc, "status", None)
        out["jetson_clocks"] = str(status if status is not None else bool(jc))
    except Exception as exc:                       # noqa: BLE001
        out["jetson_clocks"] = "unknown (%s)" % exc
    try:
        out["board"] = dict((k, str(v)) for k, v in dict(jetson.board.get("hardware", {})).items())
    except Exception:                              # noqa: BLE001
        pass
    return out


class JtopSampler(threading.Thread):
    """Logs one power record per jtop update until stopped."""

    def __init__(self, jetson, log):
        threading.Thread.__init__(self)
        self.daemon = True
        self.jetson = jetson
        self.log = log
        self.stopping = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stopping.is_set() and self.jetson.ok():
                mw, rail, rails = jtop_power(self.jetson.power)
                self.log.write({"type": "power", "t": time.monotonic(), "mw": mw,
                                "rail": rail, "rails": rails})
        except Exception as exc:                   # noqa: BLE001 - reported in the log
            self.error = "%s: %s" % (type(exc).__name__, exc)

    def stop(self):
        self.stopping.set()
        self.join(10.0)


def open_power(kind, interval):
    """(jtop object or None, {source, reason, ...}). `kind`: auto, jtop or none."""
    if kind == "none":
        return None, {"source": "none", "reason": "power sampling switched off (--power none)"}
    try:
        from jtop import jtop
    except ImportError as exc:
        if kind == "jtop":
            raise
        return None, {"source": "none", "reason": "jetson-stats not installed (%s)" % exc}
    jetson = jtop(interval=interval)
    try:
        jetson.start()
    except Exception as exc:                       # noqa: BLE001 - JtopException and friends
        if kind == "jtop":
            raise
        return None, {"source": "none",
                      "reason": "jtop could not start (%s: %s)" % (type(exc).__name__, exc)}
    info = {"source": "jtop", "interval_s": interval,
            "jtop_version": str(getattr(sys.modules.get("jtop"), "__version__", "unknown"))}
    info.update(jtop_state(jetson))
    return jetson, info


def rotated(names, k):
    k = k % len(names)
    return names[k:] + names[:k]


def make_session(ort, path, providers, threads):
    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
    available = ort.get_available_providers()
    if providers == "auto":
        chosen = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    else:
        chosen = [p.strip() for p in providers.split(",") if p.strip()]
    return ort.InferenceSession(path, sess_options=opts, providers=chosen)


def run(args):
    import numpy as np
    import onnxruntime as ort

    with open(os.path.join(args.bundle, "manifest.json")) as fh:
        manifest = json.load(fh)
    clips = np.load(os.path.join(args.bundle, manifest["clips"])).astype(np.float32)
    if args.clips:
        clips = clips[:args.clips]
    reference = np.load(os.path.join(args.bundle, manifest["reference"]))
    names = [m["name"] for m in manifest["models"]]
    log = Log(args.out)
    jetson, power = open_power(args.power, args.interval)
    sessions = {}
    for m in manifest["models"]:
        sessions[m["name"]] = make_session(ort, os.path.join(args.bundle, m["file"]),
                                           args.providers, args.threads)
    first = sessions[names[0]]
    log.write({
        "type": "header", "format": LOG_FORMAT, "version": LOG_VERSION,
        "device": args.device, "wall_time": time.time(), "monotonic": time.monotonic(),
        "bundle": manifest.get("id"), "models": names, "clips": int(len(clips)),
        "warmup": args.warmup, "repeats": args.repeats, "window_s": args.window,
        "threads": args.threads, "providers": first.get_providers(),
        "onnxruntime": ort.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "machine": platform.machine(), "power": power,
    })
    inputs = [{"clip": clips[i:i + 1]} for i in range(len(clips))]
    try:
        for name in names:                            # 1. outputs vs PyTorch
            sess = sessions[name]
            diffs, kept = [], []
            for i, feed in enumerate(inputs):
                outs = sess.run(None, feed)
                diffs.append(float(np.abs(outs[0] - reference[name][i:i + 1]).max()))
                if len(outs) > 1:
                    kept.append(outs[1].tolist())
            log.write({"type": "check", "model": name, "max_abs_diff": max(diffs),
                       "kept": kept or None})
        for w in range(args.warmup):                  # 2. interleaved latency
            for name in rotated(names, w):
                sessions[name].run(None, inputs[w % len(inputs)])
        k = 0
        for r in range(args.repeats):
            for c, feed in enumerate(inputs):
                for name in rotated(names, k):
                    start = time.perf_counter()
                    sessions[name].run(None, feed)
                    seconds = time.perf_counter() - start
                    log.write({"type": "call", "model": name, "clip": c, "repeat": r,
                               "seconds": seconds})
                k += 1
        sampler = None
        if jetson is not None:                        # 3. power windows
            sampler = JtopSampler(jetson, log)
            sampler.start()
        start = time.monotonic()
        time.sleep(args.window)
        log.write({"type": "window", "model": None, "idle": True, "start": start,
                   "end": time.monotonic(), "calls": 0})
        for name in names:
            sess = sessions[name]
            sess.run(None, inputs[0])
            calls = 0
            start = time.monotonic()
            while calls == 0 or time.monotonic() - start < args.window:
                sess.run(None, inputs[calls % len(inputs)])
                calls += 1
            log.write({"type": "window", "model": name, "idle": False, "start": start,
                       "end": time.monotonic(), "calls": calls})
        error = None
        if sampler is not None:
            sampler.stop()
            error = sampler.error
        log.write({"type": "end", "monotonic": time.monotonic(), "power_error": error})
    finally:
        if jetson is not None:
            jetson.close()
        log.close()


def build_parser():
    p = argparse.ArgumentParser(description="DANCE device runner (see the module docstring)")
    p.add_argument("--bundle", required=True, help="folder written by `dance export-onnx`")
    p.add_argument("--out", required=True, help="log file to write (JSON Lines)")
    p.add_argument("--device", default=platform.node(), help="device label for the log")
    p.add_argument("--power", choices=("auto", "jtop", "none"), default="auto")
    p.add_argument("--interval", type=float, default=0.1, help="jtop update interval (s)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--clips", type=int, default=0, help="first N clips only (0 = all)")
    p.add_argument("--window", type=float, default=10.0, help="seconds per power window")
    p.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0 = default)")
    p.add_argument("--providers", default="auto",
                   help="comma list of ORT execution providers, or auto (CUDA if present, CPU)")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
