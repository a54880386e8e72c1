"""Energy *model estimate* from MACs and memory accesses (method.md §4).

A table of per-operation costs with two presets:

* ``eyeriss65`` — normalised to one MAC (Chen et al., ISCA 2016, "Eyeriss", 65 nm, 16-bit):
  MAC 1, register file (RF) 1, inter-PE (array network) 2, global buffer 6, DRAM 200.
* ``horowitz45`` — picojoules (Horowitz, ISSCC 2014, as tabulated by Han et al., NeurIPS
  2015, Fig. 1; 45 nm, 32-bit): fp32 MAC 4.6 (= mult 3.7 + add 0.9), 32-bit register file
  access 1 (Han et al.'s table; 4 per MAC as for Eyeriss), 32-bit SRAM read 5, 32-bit DRAM
  access 640. Neither table has an inter-PE network level, so noc costs 0 here.

Mapping of work to levels (our reconstruction, docs/measurement.md):

    compute = MACs · (mac + rf_per_mac · rf)        every MAC reads weight, activation and
                                                    partial sum from the RF and writes the
                                                    partial sum back: rf_per_mac = 4
                                                    (Sze et al., Proc. IEEE 2017)
    onchip  = A · (buffer + noc)                    each element is read from (or written to)
                                                    the global buffer once and crosses the
                                                    PE-array network once
    dram    = A · dram                              each element moves DRAM <-> buffer once
    A       = weights_read + inputs_read + outputs_written   (elements, ideal reuse)

One element = one word of the table's width (16-bit for eyeriss65, 32-bit for horowitz45).
Pass a dict instead of a preset name to use other costs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dance.errors import ConfigError

COST_KEYS = ("mac", "rf", "rf_per_mac", "noc", "buffer", "dram")

PRESETS: dict[str, dict[str, Any]] = {
    "eyeriss65": {
        "mac": 1.0, "rf": 1.0, "rf_per_mac": 4, "noc": 2.0, "buffer": 6.0, "dram": 200.0,
        "unit": "MAC-normalised",
        "source": "Chen et al., ISCA 2016 (Eyeriss, 65 nm); rf_per_mac: Sze et al., 2017",
    },
    "horowitz45": {
        "mac": 4.6, "rf": 1.0, "rf_per_mac": 4, "noc": 0.0, "buffer": 5.0, "dram": 640.0,
        "unit": "pJ",
        "source": "Horowitz, ISSCC 2014; Han et al., NeurIPS 2015, Fig. 1 (45 nm, 32-bit); "
                  "rf_per_mac: Sze et al., 2017",
    },
}


def costs(preset: str | Mapping[str, Any]) -> dict[str, Any]:
    """The cost table for a preset name, or a user table validated to have every key."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ConfigError(f"unknown energy preset {preset!r}; allowed: "
                              f"{', '.join(sorted(PRESETS))} (or a dict with {COST_KEYS})")
        return {"name": preset, **PRESETS[preset]}
    table = dict(preset)
    missing = [k for k in COST_KEYS if k not in table]
    if missing:
        raise ConfigError(f"energy cost table is missing {', '.join(missing)}; "
                          f"needs {', '.join(COST_KEYS)}")
    for key in COST_KEYS:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"energy cost {key!r} must be a number >= 0, got {value!r}")
    table.setdefault("name", "custom")
    table.setdefault("unit", "custom units")
    return table


def estimate(macs: float, accesses: Mapping[str, Any],
             preset: str | Mapping[str, Any] = "eyeriss65") -> dict[str, Any]:
    """Energy split into compute, on-chip movement and DRAM; always a model estimate.

    `accesses` needs ``weights_read``, ``inputs_read`` and ``outputs_written`` in elements
    (e.g. from :func:`dance.measure.memory.conv_accesses` or a sum of them).
    """
    table = costs(preset)
    missing = [k for k in ("weights_read", "inputs_read", "outputs_written") if k not in accesses]
    if missing:
        raise ValueError(f"accesses lacks {', '.join(missing)}")
    moved = float(accesses["weights_read"] + accesses["inputs_read"]
                  + accesses["outputs_written"])
    compute = float(macs) * (table["mac"] + table["rf_per_mac"] * table["rf"])
    onchip = moved * (table["buffer"] + table["noc"])
    dram = moved * table["dram"]
    return {
        "compute": compute,
        "onchip": onchip,
        "dram": dram,
        "total": compute + onchip + dram,
        "unit": table["unit"],
        "label": "model estimate",
        "preset": table["name"],
    }


def per_clip_summary(clip_macs: Sequence[float], clip_accesses: Mapping[str, Sequence[float]],
                     dense_macs: float, dense_accesses: Mapping[str, Any],
                     preset: str | Mapping[str, Any]) -> dict[str, Any]:
    """Energy of every clip of a network whose work varies per clip, summarised against the
    dense network's: {dense, mean, ratio, p5, p95, unit, label} — the one per-clip energy
    loop of the AAP evaluation and the comparison records."""
    dense = estimate(dense_macs, dense_accesses, preset)
    per_clip = np.array([
        estimate(float(clip_macs[i]), {k: clip_accesses[k][i] for k in clip_accesses},
                 preset)["total"] for i in range(len(clip_macs))])
    return {"dense": dense["total"], "mean": float(per_clip.mean()),
            "ratio": float(per_clip.mean() / dense["total"]),
            "p5": float(np.percentile(per_clip, 5)), "p95": float(np.percentile(per_clip, 95)),
            "unit": dense["unit"], "label": "model estimate"}
