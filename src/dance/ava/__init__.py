"""AVA — activation variability amplification (method.md §2, our reconstruction).

`profiles`: magnitude profiles and sparsity measures (Lemma 1); `loss`: the recorder and
the CE − λ·σ²_AVA objective; `stats`: before/after sparsity of a trained network.
Training itself is :func:`dance.train.ava.train_ava`.
"""
