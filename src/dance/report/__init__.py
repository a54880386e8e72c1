"""The paper's tables (T1–T4), figures (F1–F10), claims check and provenance.

Everything here reads only files under ``results_dir`` (metrics CSV/JSON/NPZ written by the
workflow) and writes tables to ``results_dir/tables``, figures to ``figures_dir``: no
checkpoint, no data shard. So the committed reference results rebuild every table and
figure on a machine that never trained anything (``tests/test_report.py``).

Layout: :mod:`.registry` names every artifact, the files it reads and the module that draws
it (the Snakemake rules and ``python -m dance table|figure`` both ask it); :mod:`.style` is
the one figure style and writer, :mod:`.tables.common` the one table writer; one small
module per table (``tables/``) and per figure group (``figures/``); :mod:`.claims` and
:mod:`.provenance`.
"""
