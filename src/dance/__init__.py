"""DANCE: dynamic joint frame/channel/feature pruning of 3D CNNs — the reproduction artifact."""

__version__ = "0.1.0"
