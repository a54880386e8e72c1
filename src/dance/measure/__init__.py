"""Cost models: MACs (:mod:`.macs`), memory accesses (:mod:`.memory`), energy (:mod:`.energy`).

Every function is pure (it never changes a model's parameters, buffers or mode) and its
formula is in docs/measurement.md.
"""

from dance.measure import energy, macs, memory

__all__ = ["energy", "macs", "memory"]
