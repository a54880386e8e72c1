"""T3: latency, speed-up, power and energy per device (host measured; Jetson Nano and
Snapdragon 8 Gen 1 measured when attached, else "not measured" with the paper's number
beside).

Reads ``devices.csv`` (the device stage, column contract in docs/interfaces.md). Until
that stage has run, the table has no rows and says so ("not available yet").
"""

from __future__ import annotations

from pathlib import Path

from dance.paths import Paths
from dance.report import data
from dance.report.registry import Artifact
from dance.report.tables.common import Column, times, write_table, write_unavailable

COLUMNS = [
    Column("device", "Device"), Column("model", "Model"), Column("method", "Method"),
    Column("latency_median_ms", "Latency median (ms)", "{:.2f}"),
    Column("latency_iqr_ms", "IQR (ms)", "{:.2f}"),
    Column("speedup_vs_dense", "Speed-up vs dense", times),
    Column("avg_power_w", "Power (W)", "{:.2f}"),
    Column("energy_j_per_clip", "Energy/clip (mJ)", lambda joules: f"{1000 * joules:.1f}"),
    Column("energy_efficiency_clips_per_j", "Clips per J", "{:.1f}"),
    Column("status", "Status"), Column("paper_speedup", "Paper speed-up", times),
]


def build_t3(cfg: dict, artifact: Artifact) -> list[Path]:
    paths = Paths(cfg)
    frame = data.optional_csv(paths.devices_summary, data.DEVICE_COLUMNS)
    if frame is None:
        return write_unavailable(paths, artifact.name, artifact.title, COLUMNS,
                                 f"{paths.devices_summary.name} has not been produced (device stage).")
    return write_table(paths, artifact.name, artifact.title, frame, COLUMNS,
                       note="Latency: batch 1, median of timed runs. Energy: measured on the "
                            "device's power rail where the status says measured; devices "
                            "not attached are not measured (the paper's speed-up beside).")
