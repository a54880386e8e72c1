"""Pruning sites (named identity layers on the tensors that feed prunable convs) and the
two helpers every backbone shares (width scaling, weight initialisation).

A :class:`Site` sits immediately before every 3D conv except the first one, on exactly the
tensor that conv reads. It computes nothing, so a dense model is unchanged, but it gives
later steps one well-defined place per layer to look at and to change that tensor:

* AVA registers a forward hook on each site to read the activation magnitudes;
* AAP replaces a site's output (a forward hook may return a new tensor) with the pruned
  tensor, or gathers kept frames/channels before calling the conv.

In a residual block only the branch into the conv goes through the site; the shortcut keeps
the unpruned tensor, so pruning never changes what the identity path adds back.
"""

from __future__ import annotations

from torch import nn


class Site(nn.Identity):
    """Identity layer marking the input of one prunable conv.

    `name` is the dotted module path of the conv the site feeds (e.g. ``"conv3a"`` or
    ``"layer2.0.conv1"``), so site and conv share one key in configs, logs and tables.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def scaled(channels: int, width: float) -> int:
    """`channels` × `width`, rounded to a multiple of 4 (at least 4).

    Multiples of 4 keep the reduced networks friendly to vectorised kernels and make the
    same width give the same shapes on every machine.
    """
    return max(4, int(round(channels * width / 4.0)) * 4)


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convs, BN weight 1 / bias 0, linear N(0, 0.01).

    The same scheme as torchvision's video ResNets, so networks trained from scratch here
    start where the reference implementations start.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm1d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
