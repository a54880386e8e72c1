"""R3D-18 (Tran et al., CVPR 2018), laid out as torchvision's ``r3d_18``.

    stem    conv 3->64, k=(3,7,7), s=(1,2,2), p=(1,3,3) + BN + ReLU   (no max pool)
    layer1  2 × BasicBlock  64, stride 1
    layer2  2 × BasicBlock 128, stride 2 in T,H,W at the first block
    layer3  2 × BasicBlock 256, stride 2
    layer4  2 × BasicBlock 512, stride 2
    head    global average pool -> dropout -> fc

BasicBlock: conv3×3×3(stride)-BN-ReLU-conv3×3×3-BN, plus the shortcut (identity, or a
1×1×1 conv + BN when the shape changes), then ReLU. Channels × width (multiple of 4, ≥ 4).

Sites: one in front of each block's conv1 and conv2 (16 in all). The shortcut and the
1×1×1 downsample read the block input *before* its site, so pruning the conv branch never
removes what the residual adds back. The stem conv reads the clip and has no site.

`zero_init_residual=True` zero-initialises each block's last BN (each block starts as the
identity, Goyal et al. 2017); it is off by default to match torchvision's default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dance.models.sites import Site, init_weights, scaled


class BasicBlock(nn.Module):
    """Two 3×3×3 convs with a residual; `prefix` is the block's module path (for site names)."""

    def __init__(self, prefix: str, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.site1 = Site(f"{prefix}.conv1")
        self.conv1 = nn.Conv3d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(cout)
        self.site2 = Site(f"{prefix}.conv2")
        self.conv2 = nn.Conv3d(cout, cout, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv3d(cin, cout, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(cout),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(self.site1(x))))
        out = self.bn2(self.conv2(self.site2(out)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class R3D18(nn.Module):
    """R3D-18; see the module docstring for the layer plan and the site placement."""

    def __init__(self, num_classes: int, width: float = 1.0, dropout: float = 0.0,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        c = [scaled(ch, width) for ch in (64, 128, 256, 512)]

        self.stem_conv = nn.Conv3d(3, c[0], kernel_size=(3, 7, 7), stride=(1, 2, 2),
                                   padding=(1, 3, 3), bias=False)
        self.stem_bn = nn.BatchNorm3d(c[0])
        self.stem_act = nn.ReLU()  # its output = first conv's post-activation (controller input)

        self.layer1 = nn.Sequential(BasicBlock("layer1.0", c[0], c[0], 1),
                                    BasicBlock("layer1.1", c[0], c[0], 1))
        self.layer2 = nn.Sequential(BasicBlock("layer2.0", c[0], c[1], 2),
                                    BasicBlock("layer2.1", c[1], c[1], 1))
        self.layer3 = nn.Sequential(BasicBlock("layer3.0", c[1], c[2], 2),
                                    BasicBlock("layer3.1", c[2], c[2], 1))
        self.layer4 = nn.Sequential(BasicBlock("layer4.0", c[2], c[3], 2),
                                    BasicBlock("layer4.1", c[3], c[3], 1))

        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c[3], num_classes)

        self.width = width
        self.feature_dim = c[3]
        init_weights(self)
        if zero_init_residual:
            for block in self.blocks():
                nn.init.zeros_(block.bn2.weight)

    @property
    def first_conv(self) -> nn.Conv3d:
        return self.stem_conv

    @property
    def first_act(self) -> nn.Module:
        """Module whose output is the first conv's post-activation tensor (hook this)."""
        return self.stem_act

    @property
    def classifier(self) -> nn.Linear:
        return self.fc

    def blocks(self) -> list[BasicBlock]:
        return [b for layer in (self.layer1, self.layer2, self.layer3, self.layer4) for b in layer]

    def prunable_convs(self) -> list[tuple[str, Site, nn.Conv3d]]:
        """(site name, site, conv it feeds) for every prunable conv, in execution order."""
        out = []
        for block in self.blocks():
            out.append((block.site1.name, block.site1, block.conv1))
            out.append((block.site2.name, block.site2, block.conv2))
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip (N,3,T,H,W) -> globally pooled features (N, feature_dim)."""
        x = self.stem_act(self.stem_bn(self.stem_conv(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))
