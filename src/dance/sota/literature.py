"""Literature-only rows of the comparison: numbers quoted from publications, never measured
here and never placed in a measured column (``comparison_literature.csv``).

Each row names the publication, the setting the number was obtained in (model, data set,
metric) and the value as the source states it. The list follows the project's method brief
(method.md §5) and states no more than it does ("not restated" where the brief gives no
detail); none of these settings matches ours (other data sets, other backbones,
other cost models), so the numbers are context, not competitors.
"""

from __future__ import annotations

COLUMNS = ["method", "source", "model", "dataset", "metric", "value", "source_value", "note"]

_ROWS = [
    ("FBS (feature boosting and suppression)",
     "Gao et al., Dynamic Channel Pruning: Feature Boosting and Suppression, ICLR 2019",
     "ResNet-18", "ImageNet", "compute (MACs) saving", "2x",
     "2D image classification; dynamic channel gating"),
    ("Channel Gating",
     "Hua et al., Channel Gating Neural Networks, NeurIPS 2019",
     "not restated", "not restated", "compute reduction", "2.6x",
     "setting not restated in the method brief; see the paper"),
    ("FrameExit",
     "Ghodrati et al., FrameExit: Conditional Early Exiting for Efficient Video Recognition, "
     "CVPR 2021", "not restated", "video recognition benchmarks",
     "fewer GFLOPs", "1.3x-2.1x", "video; learned per-clip frame budget"),
    ("3D CNN FPGA pruning",
     "Sun et al., IEEE TCAD 2024", "C3D", "not restated", "reported gain", "4.12x",
     "3D CNN pruning on an FPGA; metric not restated in the method brief, see the paper"),
    ("Dynamic pruning-level selection",
     "Maleki et al., ACM TODAES 26(6), 2021", "CNN", "CIFAR-10",
     "energy reduction at ~3% accuracy loss", "~70%", "Eyeriss energy model"),
    ("DANCE", "Mejri, Rasul, Chatterjee, arXiv 2603.17275, 2026", "3D CNNs", "video",
     "energy efficiency vs the state of the art", "up to 1.47x", "the claim checked here"),
    ("DANCE", "Mejri, Rasul, Chatterjee, arXiv 2603.17275, 2026", "3D CNNs", "video",
     "speed-up on NVIDIA Jetson Nano GPU", "1.37x", "device result"),
    ("DANCE", "Mejri, Rasul, Chatterjee, arXiv 2603.17275, 2026", "3D CNNs", "video",
     "speed-up on Qualcomm Snapdragon 8 Gen 1", "2.22x", "device result"),
]


def rows() -> list[dict[str, str]]:
    """The quoted rows; ``source_value`` is always "paper"."""
    return [dict(zip(COLUMNS, (*r[:6], "paper", r[6]), strict=True)) for r in _ROWS]
