"""Paper figures F1–F10, one module per group; :mod:`dance.report.style` draws and saves
every one of them."""
