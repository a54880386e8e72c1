#!/usr/bin/env python3
"""DANCE device runner: times the exported models on this device and logs power samples.

Self-contained on purpose: it is copied to the device (a Jetson Nano on JetPack 4.6 runs
Python 3.6) and needs only numpy, onnxruntime and, for power, jetson-stats (``jtop``). It
must stay Python 3.6 syntax (a test parses it with ``feature_version=(3, 6)``) and must not
import the ``dance`` package. Why this module is long: it is the one file
copied to a device, so its parts (jtop reading, sampler, groups, timing, log) cannot live
in modules the device would also need.

    python3 device_runner.py --bundle BUNDLE_DIR --out LOG.jsonl [--power auto|jtop|none]

The bundle (written by ``python -m dance export-onnx``) holds ``manifest.json``, the ONNX
models, the test clips (``clips.npy``) and PyTorch's outputs of those clips
(``reference.npz``). Models are loaded in groups of at most ``--max-sessions`` (each group a
backbone's dense model and up to ``max_sessions - 1`` others, so that a Nano's 4 GB hold
them) and each group in turn is

1. run once on every clip; its logits and, for DANCE, its kept counts are logged, and the
   host compares them with PyTorch's on ingest (a device that computes wrong results is
   reported so, never with a speed-up);
2. timed interleaved at batch 1: ``warmup`` untimed rounds, then ``repeats`` passes over the
   clips, each round running every model of the group once in an order rotated per round
   (drift falls on every model alike); no power sampler, no jtop client runs meanwhile;
3. then jtop is opened, an idle window runs (first group only), then each model not yet
   measured runs alone for ``window_s`` seconds while a thread logs timestamped power
   samples, jtop is closed again, and the group's sessions are released.

Power: on a Jetson through jtop — total board power is the ``POM_5V_IN`` rail (``VDD_IN`` on
later modules), never the sum of the CPU/GPU rails; the nvpmodel mode and jetson_clocks state
are recorded. jtop is probed before the latency phase, so ``--power jtop`` fails at once
without it. Without jtop (or when its service is not running) no power is logged and the
header says why. The sampling record of each group gives the samples taken, the measured
median interval and the longest gap (the first jtop client sets the service's rate, so the
requested interval need not be the real one); a jtop that stops delivering is an error.

4. after every group: the per-layer latency tables the bundle holds (``latency_tables`` in
   its manifest; ``--latency-tables skip`` leaves them out). Per model, its dense network
   and floor graph are timed interleaved over the clips; then per prunable layer its dense
   conv and the static conv of every grid point, each fed one fixed random input: sessions
   of at most ``--table-max-sessions`` graphs (the dense conv in each; 0 = a layer's graphs
   at once), ``--table-warmup`` untimed rounds, then ``--table-repeats`` rounds, each
   running every graph once in an order rotated per round (defaults: the manifest's
   ``aap.latency_table`` warmup and repeats). No power is sampled meanwhile.

Log: JSON Lines, one record per line, flushed as written; ``type`` is one of ``header``,
``session`` (per model: its execution providers), ``check``, ``call``, ``window``,
``power``, ``sampling``, ``table`` (per model of step 4: what was run), ``layer_session``
(per session group of step 4: its graphs and providers), ``layer_call`` (``model``,
``layer`` — null for the whole network —, ``key`` — ``dense``, ``floor`` or a grid point
``frames,channels,features`` —, ``repeat``, ``seconds``), ``end``. A log without its
``end`` record was cut short. Times: ``t``/``start``/``end`` are ``time.monotonic()``
seconds (one clock for the samples and the windows); ``seconds`` of a call is its
``time.perf_counter()`` duration.
"""

import argparse
import json
import os
import platform
import sys
import threading
import time

LOG_FORMAT = "dance-device-log"
LOG_VERSION = 3          # 3: the per-layer latency table (table, layer_session, layer_call)
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
    """Logs one power record per jtop update until stopped; a jtop that stops delivering
    (its ``ok()`` turns False on a timeout) is an error, not a silent end."""

    def __init__(self, jetson, log):
        threading.Thread.__init__(self)
        self.daemon = True
        self.jetson = jetson
        self.log = log
        self.stopping = threading.Event()
        self.error = None
        self.times = []

    def run(self):
        try:
            while not self.stopping.is_set():
                if not self.jetson.ok():
                    if not self.stopping.is_set():
                        self.error = ("jtop stopped delivering samples at t=%.3f s (no update "
                                      "within its timeout)" % time.monotonic())
                    return
                mw, rail, rails = jtop_power(self.jetson.power)
                t = time.monotonic()
                self.times.append(t)
                self.log.write({"type": "power", "t": t, "mw": mw, "rail": rail,
                                "rails": rails})
        except Exception as exc:                   # noqa: BLE001 - reported in the log
            self.error = "%s: %s" % (type(exc).__name__, exc)

    def stop(self):
        self.stopping.set()
        self.join(10.0)

    def stats(self):
        """Samples taken, their median interval and the longest gap (s) as measured."""
        gaps = sorted(b - a for a, b in zip(self.times, self.times[1:]))  # noqa: B905 (3.6)
        return {"samples": len(self.times),
                "interval_measured_s": gaps[len(gaps) // 2] if gaps else None,
                "max_gap_s": gaps[-1] if gaps else None, "error": self.error}


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
    info = {"source": "jtop", "interval_requested_s": interval,
            "interval_reported_s": getattr(jetson, "interval", None),
            "jtop_version": str(getattr(sys.modules.get("jtop"), "__version__", "unknown"))}
    info.update(jtop_state(jetson))
    return jetson, info


def rotated(names, k):
    k = k % len(names)
    return names[k:] + names[:k]


def plan_groups(models, max_sessions):
    """Lists of model names loaded together; each group is timed interleaved, then released.

    `models`: the manifest's model entries (``name``, ``model``, ``method``). Every group of a
    backbone holds its dense model, so each speed-up is measured side by side with dense in
    the same group; ``max_sessions`` bounds the sessions alive at once (0 = every model in
    one group, the most even interleaving when memory allows it).
    """
    names = [m["name"] for m in models]
    if max_sessions <= 0 or max_sessions >= len(names):
        return [names]
    groups = []
    backbones = []
    for m in models:
        if m["model"] not in backbones:
            backbones.append(m["model"])
    for backbone in backbones:
        mine = [m["name"] for m in models if m["model"] == backbone]
        dense = [n for n in mine if n == backbone + ":dense"]
        others = [n for n in mine if n not in dense]
        if max_sessions == 1 or not dense:
            groups.extend([n] for n in mine)
            continue
        step = max_sessions - 1
        if not others:
            groups.append(dense)
        for i in range(0, len(others), step):
            groups.append(dense + others[i:i + step])
    return groups


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


def check_outputs(sess, inputs):
    """Outputs of every clip: logits and, for a DANCE graph, its kept counts (lists)."""
    logits, kept = [], []
    for feed in inputs:
        outs = sess.run(None, feed)
        logits.append(outs[0][0].tolist())
        if len(outs) > 1:
            kept.append(outs[1].tolist())
    return logits, kept or None


def time_group(sessions, names, inputs, args, log, group, first_round):
    """Warm-up, then `repeats` interleaved passes; the order rotates every round."""
    for w in range(args.warmup):
        for name in rotated(names, first_round + w):
            sessions[name].run(None, inputs[w % len(inputs)])
    k = first_round
    for r in range(args.repeats):
        for c, feed in enumerate(inputs):
            for name in rotated(names, k):
                start = time.perf_counter()
                sessions[name].run(None, feed)
                seconds = time.perf_counter() - start
                log.write({"type": "call", "model": name, "clip": c, "repeat": r,
                           "group": group, "seconds": seconds})
            k += 1
    return k


def power_windows(sessions, names, inputs, args, log, jetson, idle):
    """An idle window (when `idle`), then each model alone for ``window`` seconds, while a
    sampler logs power (only here: latency is timed without it); returns its stats."""
    sampler = JtopSampler(jetson, log) if jetson is not None else None
    if sampler is not None:
        sampler.start()
    try:
        if idle:
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
    finally:
        if sampler is not None:
            sampler.stop()
    return sampler.stats() if sampler is not None else None


def run(args):
    import numpy as np
    import onnxruntime as ort

    with open(os.path.join(args.bundle, "manifest.json")) as fh:
        manifest = json.load(fh)
    clips = np.load(os.path.join(args.bundle, manifest["clips"])).astype(np.float32)
    if args.clips:
        clips = clips[:args.clips]
    names = [m["name"] for m in manifest["models"]]
    files = dict((m["name"], os.path.join(args.bundle, m["file"])) for m in manifest["models"])
    groups = plan_groups(manifest["models"], args.max_sessions)
    log = Log(args.out)
    # Probe power first, so that --power jtop fails before the long latency phase; the
    # client is closed again: latencies are timed with no jtop client or sampler running.
    jetson, power = open_power(args.power, args.interval)
    if jetson is not None:
        jetson.close()
    log.write({
        "type": "header", "format": LOG_FORMAT, "version": LOG_VERSION,
        "device": args.device, "wall_time": time.time(), "monotonic": time.monotonic(),
        "bundle": manifest.get("id"), "models": names, "clips": int(len(clips)),
        "warmup": args.warmup, "repeats": args.repeats, "window_s": args.window,
        "threads": args.threads, "providers_requested": args.providers,
        "max_sessions": args.max_sessions, "groups": groups,
        "onnxruntime": ort.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "machine": platform.machine(), "power": power,
        "latency_tables": ([t["model"] for t in manifest.get("latency_tables", [])]
                           if args.latency_tables == "run" else []),
    })
    try:
        inputs = inputs_of(clips)
        errors = run_groups(args, groups, files, inputs, power, log)
        if args.latency_tables == "run":
            run_tables(args, manifest, files, inputs, log)
        log.write({"type": "end", "monotonic": time.monotonic(),
                   "power_error": "; ".join(errors) or None})
    finally:
        log.close()


def inputs_of(clips):
    return [{"clip": clips[i:i + 1]} for i in range(len(clips))]


def run_groups(args, groups, files, inputs, power, log):
    """Each group in turn: load, check, time, power windows, release (module docstring)."""
    import gc

    import onnxruntime as ort

    errors = []
    checked, windowed = set(), set()
    k = 0
    for g, group in enumerate(groups):
        sessions = {}
        for name in group:                            # at most max_sessions alive at once
            start = time.perf_counter()
            sessions[name] = make_session(ort, files[name], args.providers, args.threads)
            log.write({"type": "session", "model": name, "group": g,
                       "providers": sessions[name].get_providers(),
                       "load_seconds": time.perf_counter() - start})
        for name in group:                            # 1. outputs, compared on the host
            if name not in checked:
                logits, kept = check_outputs(sessions[name], inputs)
                log.write({"type": "check", "model": name, "logits": logits, "kept": kept})
                checked.add(name)
        k = time_group(sessions, group, inputs, args, log, g, k)      # 2. latency
        todo = [n for n in group if n not in windowed]
        if power["source"] == "jtop" and todo:        # 3. power, sampler running only here
            try:
                jetson, _ = open_power("jtop", args.interval)
            except Exception as exc:                  # noqa: BLE001 - reported in the log
                jetson = None
                errors.append("group %d: jtop did not start again (%s: %s)"
                              % (g, type(exc).__name__, exc))
            try:
                stats = power_windows(sessions, todo, inputs, args, log, jetson,
                                      idle=not windowed)
            finally:
                if jetson is not None:
                    jetson.close()
            if stats is not None:
                stats.update({"type": "sampling", "group": g,
                              "interval_requested_s": args.interval,
                              "interval_reported_s": getattr(jetson, "interval", None)})
                log.write(stats)
                if stats["error"]:
                    errors.append("group %d: %s" % (g, stats["error"]))
        elif todo:
            power_windows(sessions, todo, inputs, args, log, None, idle=not windowed)
        windowed.update(todo)
        sessions.clear()
        gc.collect()                                  # release the group's weights
    return errors


def table_chunks(keys, max_sessions):
    """Lists of graph keys loaded together: all of them, or at most `max_sessions` (at
    least 2), the first key (the layer's dense conv) in each."""
    if max_sessions <= 0 or max_sessions >= len(keys):
        return [list(keys)]
    step = max(1, max_sessions - 1)
    return [keys[:1] + keys[1 + i:1 + i + step] for i in range(0, len(keys) - 1, step)]


def time_table(args, log, model, layer, files, feeds, warmup, repeats):
    """Time the graphs `files` (key -> path; the first is the reference) of one layer (or
    of the whole network, `layer` None) interleaved, each on its list of `feeds`."""
    import gc

    import onnxruntime as ort

    keys = list(files)
    k = 0
    for chunk in table_chunks(keys, args.table_max_sessions):
        start = time.perf_counter()
        sessions = dict((key, make_session(ort, files[key], args.providers, args.threads))
                        for key in chunk)
        log.write({"type": "layer_session", "model": model, "layer": layer, "keys": chunk,
                   "providers": sessions[chunk[0]].get_providers(),
                   "load_seconds": time.perf_counter() - start})
        for w in range(warmup):
            for key in rotated(chunk, k + w):
                sessions[key].run(None, feeds[key][w % len(feeds[key])])
        for r in range(repeats):
            for c in range(max(len(f) for f in feeds.values())):
                for key in rotated(chunk, k):
                    feed = feeds[key][c % len(feeds[key])]
                    start = time.perf_counter()
                    sessions[key].run(None, feed)
                    seconds = time.perf_counter() - start
                    log.write({"type": "layer_call", "model": model, "layer": layer,
                               "key": key, "repeat": r, "clip": c, "seconds": seconds})
                k += 1
        sessions.clear()
        gc.collect()


def run_tables(args, manifest, files, inputs, log):
    """Step 4 of the module docstring: every per-layer latency table of the bundle."""
    import numpy as np

    for table in manifest.get("latency_tables", []):
        model = table["model"]
        warmup = table["warmup"] if args.table_warmup < 0 else args.table_warmup
        repeats = table["repeats"] if args.table_repeats < 0 else args.table_repeats
        log.write({"type": "table", "model": model, "warmup": warmup, "repeats": repeats,
                   "max_sessions": args.table_max_sessions, "layers": len(table["layers"]),
                   "floor": table.get("floor")})
        net = {"dense": files[table["dense"]]}
        if table.get("floor"):
            net["floor"] = os.path.join(args.bundle, table["floor"])
        time_table(args, log, model, None, net, dict((key, inputs) for key in net),
                   warmup, repeats)
        rng = np.random.RandomState(0)
        for layer in table["layers"]:
            graphs = layer["graphs"]
            paths = dict((g["key"], os.path.join(args.bundle, g["file"])) for g in graphs)
            feeds = dict((g["key"], [{"x": rng.rand(*g["input"]).astype(np.float32)}])
                         for g in graphs)
            time_table(args, log, model, layer["layer"], paths, feeds, warmup, repeats)


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
    p.add_argument("--max-sessions", type=int, default=2,
                   help="models loaded at once (each group: a backbone's dense model + others; "
                        "0 = all at once)")
    p.add_argument("--providers", default="auto",
                   help="comma list of ORT execution providers, or auto (CUDA if present, CPU)")
    p.add_argument("--latency-tables", choices=("run", "skip"), default="run",
                   help="time the bundle's per-layer latency tables after the models")
    p.add_argument("--table-warmup", type=int, default=-1,
                   help="untimed rounds per layer (-1 = the bundle's aap.latency_table.warmup)")
    p.add_argument("--table-repeats", type=int, default=-1,
                   help="timed rounds per layer (-1 = the bundle's aap.latency_table.repeats)")
    p.add_argument("--table-max-sessions", type=int, default=0,
                   help="table graphs loaded at once (the layer's dense conv in each group; "
                        "0 = all graphs of a layer at once)")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
