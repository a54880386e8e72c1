"""Paper figures F1–F10, one module per group, and the data set's sample clips (`samples`); :mod:`dance.report.style` draws and saves
every one of them."""
