"""Cost models: MACs (:mod:`.macs`), memory accesses (:mod:`.memory`), energy (:mod:`.energy`).

Every function is pure (it never changes a model's parameters, buffers or mode) and its
formula is in docs/measurement.md.

Host measurements (imported on demand, they need more than a model): :mod:`.latency`
(interleaved batch-1 timing, slow-path check), :mod:`.rapl` (CPU package energy),
:mod:`.variants` (what the bench times), :mod:`.bench` and :mod:`.profile` (the CLI steps).

Submodules are imported by name (``from dance.measure import macs``), never here, so that
torch-free users (log parsers, the report) do not pay for importing torch.
"""
