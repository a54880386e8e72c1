"""State-of-the-art comparisons (method.md §5): re-implemented methods, each evaluated into
one operating-point record (:mod:`.record`), assembled into ``comparison.csv``."""
