"""AAP: activation-aware pruning of frames, channels and spatial features (method.md §3).

:mod:`.prune` the pruning function (hard masks and soft gates), :mod:`.controller` the
controller network, :mod:`.execute` the batch-1 pruned execution of one conv,
:mod:`.model` the wrapper that attaches AAP to a backbone without touching its code,
:mod:`.evaluate` the test-split evaluation and :mod:`.bench` the timed bench variants.
Training is :mod:`dance.train.aap`. The design and its measured reasons: docs/method.md, "AAP".
"""
