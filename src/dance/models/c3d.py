"""C3D (Tran et al., ICCV 2015) with BatchNorm after every conv ("C3D-BN").

Layer plan (channels at width 1.0; every conv is 3×3×3, stride 1, padding 1):

    conv1 64   pool1 (1,2,2)
    conv2 128  pool2 (2,2,2)
    conv3a 256 conv3b 256  pool3 (2,2,2)
    conv4a 512 conv4b 512  pool4 (2,2,2)
    conv5a 512 conv5b 512  pool5 -> adaptive max to (1, g, g), g = 4
    fc6 4096   fc7 4096    fc8 num_classes

Choices that are ours, not the 2015 paper's:

* BatchNorm after each conv (conv bias dropped): the original was trained on Sports-1M
  without BN; from scratch on a small data set, plain C3D trains poorly.
* pool5 is an adaptive max pool to a fixed (1, g, g) grid, so any clip size gives the same
  fc6 input. At 16×112×112 conv5b is 2×7×7 and the grid is 1×4×4, the shape of the original
  pool5 output (Caffe's padded, ceil-mode pool); the bin boundaries differ slightly.
* Pools clip their kernel to the input: a dimension already smaller than the kernel is not
  pooled (kernel and stride become that dimension's size, e.g. 1). Short clips (T < 16)
  reach T = 1 before pool4/pool5 would run out of frames; they then skip temporal pooling
  instead of crashing.
* Width multiplier on every conv and on fc6/fc7 (rounded to a multiple of 4, at least 4).
* fc6/fc7 start from Kaiming-normal weights (fc8 from N(0, 0.01)); see ``__init__``.

A :class:`~dance.models.sites.Site` sits in front of every conv except conv1, after the
preceding pool, i.e. on exactly the tensor the conv reads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dance.models.sites import Site, init_weights, scaled

# Convs fed by a site, in execution order (conv1 reads the clip and is never pruned).
PRUNABLE = ("conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")


class ClippedMaxPool3d(nn.Module):
    """Non-overlapping max pool whose kernel is clipped to the input size per dimension.

    A (2,2,2) pool on a 1-frame tensor would raise; clipping makes it a no-op in time and a
    normal 2×2 pool in space, so every clip length runs through the same network.
    """

    def __init__(self, kernel: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel = tuple(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = tuple(min(k, s) for k, s in zip(self.kernel, x.shape[2:], strict=True))
        if (not torch.is_grad_enabled() and set(k) <= {1, 2}
                and all(s % 2 == 0 for kk, s in zip(k, x.shape[2:], strict=True) if kk == 2)):
            # Inference: the same values as max_pool3d, as pairwise maxima of strided views
            # per pooled dimension. PyTorch's CPU max_pool3d on contiguous input (it also
            # computes argmax indices) took 4.1 ms vs 0.55 ms for pool1 at batch 1 on the
            # default clip; timed networks (dense and pruned alike) get the fast form.
            # Training keeps max_pool3d (its gradient at ties is the reference one).
            for dim, kk in enumerate(k, start=2):
                if kk == 2:
                    pairs = x.unflatten(dim, (-1, 2))
                    x = torch.maximum(pairs.select(dim + 1, 0), pairs.select(dim + 1, 1))
            return x
        return F.max_pool3d(x, kernel_size=k, stride=k)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel} (clipped to the input size)"


def _conv(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=3, stride=1, padding=1, bias=False)


class C3D(nn.Module):
    """C3D-BN; see the module docstring for the layer plan and our deviations."""

    def __init__(self, num_classes: int, width: float = 1.0, dropout: float = 0.0,
                 head_grid: int = 4) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (scaled(c, width) for c in (64, 128, 256, 512, 512))
        fc = scaled(4096, width)

        self.conv1 = nn.Conv3d(3, c1, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(c1)
        self.act1 = nn.ReLU()  # its output = first conv's post-activation (controller input)
        self.pool1 = ClippedMaxPool3d((1, 2, 2))

        self.site2 = Site("conv2")
        self.conv2 = _conv(c1, c2)
        self.bn2 = nn.BatchNorm3d(c2)
        self.pool2 = ClippedMaxPool3d((2, 2, 2))

        self.site3a = Site("conv3a")
        self.conv3a = _conv(c2, c3)
        self.bn3a = nn.BatchNorm3d(c3)
        self.site3b = Site("conv3b")
        self.conv3b = _conv(c3, c3)
        self.bn3b = nn.BatchNorm3d(c3)
        self.pool3 = ClippedMaxPool3d((2, 2, 2))

        self.site4a = Site("conv4a")
        self.conv4a = _conv(c3, c4)
        self.bn4a = nn.BatchNorm3d(c4)
        self.site4b = Site("conv4b")
        self.conv4b = _conv(c4, c4)
        self.bn4b = nn.BatchNorm3d(c4)
        self.pool4 = ClippedMaxPool3d((2, 2, 2))

        self.site5a = Site("conv5a")
        self.conv5a = _conv(c4, c5)
        self.bn5a = nn.BatchNorm3d(c5)
        self.site5b = Site("conv5b")
        self.conv5b = _conv(c5, c5)
        self.bn5b = nn.BatchNorm3d(c5)
        self.pool5 = nn.AdaptiveMaxPool3d((1, head_grid, head_grid))

        self.fc6 = nn.Linear(c5 * head_grid * head_grid, fc)
        self.drop6 = nn.Dropout(dropout)
        self.fc7 = nn.Linear(fc, fc)
        self.dropout = nn.Dropout(dropout)
        self.fc8 = nn.Linear(fc, num_classes)

        self.width = width
        self.feature_dim = fc
        init_weights(self)
        # fc6/fc7 feed ReLUs: Kaiming (fan_in) instead of the shared N(0, 0.01). With the
        # small-std init and AdamW (step ~ lr per weight), the 0.25-width head died within two
        # epochs on the default data (every fc6 ReLU off, loss stuck at ln 10).
        # Rescaling the N(0, 0.01) draw gives exactly Kaiming-normal weights without drawing
        # again, so every later random draw (controllers, heads) is unchanged.
        for fc_layer in (self.fc6, self.fc7):
            fc_layer.weight.data.mul_(math.sqrt(2.0 / fc_layer.in_features) / 0.01)

    @property
    def first_conv(self) -> nn.Conv3d:
        return self.conv1

    @property
    def first_act(self) -> nn.Module:
        """Module whose output is the first conv's post-activation tensor (hook this)."""
        return self.act1

    @property
    def classifier(self) -> nn.Linear:
        return self.fc8

    def prunable_convs(self) -> list[tuple[str, Site, nn.Conv3d]]:
        """(site name, site, conv it feeds) for every prunable conv, in execution order."""
        out = []
        for name in PRUNABLE:
            suffix = name[len("conv"):]
            out.append((name, getattr(self, "site" + suffix), getattr(self, name)))
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip (N,3,T,H,W) -> fc7 activations (N, feature_dim)."""
        x = self.pool1(self.act1(self.bn1(self.conv1(x))))
        x = F.relu(self.bn2(self.conv2(self.site2(x))))
        x = self.pool2(x)
        x = F.relu(self.bn3a(self.conv3a(self.site3a(x))))
        x = F.relu(self.bn3b(self.conv3b(self.site3b(x))))
        x = self.pool3(x)
        x = F.relu(self.bn4a(self.conv4a(self.site4a(x))))
        x = F.relu(self.bn4b(self.conv4b(self.site4b(x))))
        x = self.pool4(x)
        x = F.relu(self.bn5a(self.conv5a(self.site5a(x))))
        x = F.relu(self.bn5b(self.conv5b(self.site5b(x))))
        x = torch.flatten(self.pool5(x), 1)
        x = self.drop6(F.relu(self.fc6(x)))
        return F.relu(self.fc7(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc8(self.dropout(self.features(x)))
