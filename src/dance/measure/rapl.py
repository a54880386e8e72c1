"""Host CPU energy from RAPL counters in the Linux powercap sysfs tree (method.md §7).

Each package domain ``<root>/intel-rapl:N`` (``name`` = ``package-N``; AMD CPUs use the
same tree) has a cumulative counter ``energy_uj`` in microjoules that wraps to 0 after
``max_energy_range_uj``. Energy over a window is the sum over package domains of the
counter's increase; a decrease means the counter wrapped once, and the increase is then
``max_energy_range_uj - before + after``. :meth:`RaplMeter.sample` may be called during a
long window so that each interval between samples is shorter than one wrap period (the
counter wraps after tens of minutes at typical package power).

RAPL counts the whole package: other processes on the same CPU and idle power are
included. Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694); when
it cannot be read, :func:`available` says why and nothing is measured.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path("/sys/class/powercap")
_PACKAGE_DIR = re.compile(r"^intel-rapl:(\d+)$")


@dataclass(frozen=True)
class RaplDomain:
    """One package domain: its sysfs folder, its name and its counter's wrap value."""

    path: Path
    name: str
    max_energy_range_uj: int

    @property
    def energy_file(self) -> Path:
        return self.path / "energy_uj"

    def read_uj(self) -> int:
        return int(self.energy_file.read_text().strip())


def energy_delta_uj(before: int, after: int, max_energy_range_uj: int) -> int:
    """Increase of a counter from `before` to `after`, allowing for one wraparound."""
    if after >= before:
        return after - before
    return max_energy_range_uj - before + after


def _package_dirs(root: Path) -> list[Path]:
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _PACKAGE_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def _name(path: Path) -> str:
    try:
        return (path / "name").read_text().strip()
    except OSError:
        return path.name


def _discover(root: Path) -> tuple[list[RaplDomain], str]:
    """Package domains under `root` and "" — or [] and the reason they cannot be read."""
    prefix = "RAPL not readable"
    if not root.exists():
        return [], f"{prefix}: {root} does not exist"
    try:
        dirs = [p for p in _package_dirs(root) if _name(p).startswith("package")]
    except PermissionError:
        return [], f"{prefix}: permission denied listing {root}"
    except OSError as exc:
        return [], f"{prefix}: {root}: {exc.strerror}"
    if not dirs:
        return [], f"{prefix}: no package domain (intel-rapl:N named package-*) under {root}"
    domains = []
    for d in dirs:
        for leaf in ("energy_uj", "max_energy_range_uj"):
            f = d / leaf
            try:
                value = int(f.read_text().strip())
            except PermissionError:
                return [], (f"{prefix}: permission denied on {f} (root-only since Linux 5.10; "
                            f"a root user can grant read access with `chmod a+r`)")
            except FileNotFoundError:
                return [], f"{prefix}: {f} does not exist"
            except (OSError, ValueError) as exc:
                return [], f"{prefix}: cannot read {f} ({exc})"
        domains.append(RaplDomain(d, _name(d), value))
    return domains, ""


def available(root: str | Path = DEFAULT_ROOT) -> tuple[bool, str]:
    """(True, which domains) if RAPL package energy can be read here, else (False, reason)."""
    domains, reason = _discover(Path(root))
    if not domains:
        return False, reason
    return True, "RAPL package domains: " + ", ".join(d.name for d in domains)


class RaplMeter:
    """Joules used by the CPU packages over a window: ``start()``, ``sample()``*, ``stop()``.

    ``measure(fn)`` wraps one call. `root` is the powercap folder (a parameter so tests can
    point it at a fake tree). Raises RuntimeError with the reason if RAPL is not readable.
    """

    def __init__(self, root: str | Path = DEFAULT_ROOT, clock: Callable[[], float] = time.perf_counter):
        self.root = Path(root)
        self.clock = clock
        self._domains: list[RaplDomain] | None = None
        self._last: dict[Path, int] = {}
        self._uj: dict[Path, int] = {}
        self._t0 = 0.0
        self.seconds = 0.0

    def available(self) -> tuple[bool, str]:
        return available(self.root)

    @property
    def domains(self) -> list[RaplDomain]:
        if self._domains is None:
            domains, reason = _discover(self.root)
            if not domains:
                raise RuntimeError(reason)
            self._domains = domains
        return self._domains

    def read(self) -> dict[Path, int]:
        """Raw counters (µJ) of every package domain."""
        return {d.path: d.read_uj() for d in self.domains}

    def start(self) -> None:
        self._last = self.read()
        self._uj = {p: 0 for p in self._last}
        self._t0 = self.clock()

    def sample(self) -> float:
        """Fold the counters' increase since the last reading in; returns joules so far."""
        now = self.read()
        for d in self.domains:
            self._uj[d.path] += energy_delta_uj(self._last[d.path], now[d.path],
                                                d.max_energy_range_uj)
        self._last = now
        return self.joules

    def stop(self) -> float:
        """Joules since :meth:`start` (summed over package domains)."""
        self.sample()
        self.seconds = self.clock() - self._t0
        return self.joules

    @property
    def joules(self) -> float:
        return sum(self._uj.values()) / 1e6

    @property
    def joules_by_domain(self) -> dict[str, float]:
        return {d.name: self._uj.get(d.path, 0) / 1e6 for d in self.domains}

    def describe(self) -> str:
        """How the last window was measured, for the result's status text."""
        return (f"RAPL {', '.join(self.joules_by_domain)}; whole package incl. idle and "
                f"other processes")

    def measure(self, fn: Callable[..., Any], *args: Any, **kwargs: Any,
                ) -> tuple[Any, float, float]:
        """(fn's result, joules, seconds) of one call."""
        self.start()
        result = fn(*args, **kwargs)
        joules = self.stop()
        return result, joules, self.seconds
