"""ResNet-18 with GroupNorm for CIFAR (Hsieh et al. 2020; Reddi et al. 2021).

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016: ResNet-18 is four stages of two
BasicBlocks (64, 128, 256, 512 channels). The CIFAR variant starts with one 3x3 convolution (stride 1) and no
max-pool, so 32x32 images keep their resolution into the first stage. Hsieh, Phanishayee, Mutlu, Gibbons, "The
Non-IID Data Quagmire of Decentralized Machine Learning", ICML 2020, show that BatchNorm fails under non-IID
client data and replace it with GroupNorm (Wu & He, ECCV 2018); as they do (and Reddi et al., "Adaptive Federated
Optimization", ICLR 2021, for CIFAR-10/100), every normalization layer here is ``GroupNorm`` with **2 groups**.
GroupNorm has the same affine parameters as BatchNorm and no running statistics, so the model has no buffers:
nothing to average besides the weights, and ``backend=vectorized`` runs it (torch.func handles conv and group norm).

Parameters: 11,173,962 with 10 classes (CIFAR-10) and 11,220,132 with 100 (CIFAR-100), the same as the BatchNorm
ResNet-18 of this layout.
"""

from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from fedbench.errors import ConfigError, require

STAGES = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with GroupNorm and a residual connection (a 1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.GroupNorm(groups, cout))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetGN(nn.Module):
    """The CIFAR ResNet: 3x3 stem, four stages of ``blocks`` BasicBlocks, global average pool, linear classifier."""

    def __init__(self, channels: int, num_classes: int, blocks: Sequence[int], groups: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, STAGES[0], 3, stride=1, padding=1, bias=False),
                                  nn.GroupNorm(groups, STAGES[0]), nn.ReLU())
        layers, cin = [], STAGES[0]
        for i, (width, count) in enumerate(zip(STAGES, blocks)):
            for j in range(count):
                layers.append(BasicBlock(cin, width, 2 if i > 0 and j == 0 else 1, groups))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(STAGES[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layers(self.stem(x))
        return self.head(F.adaptive_avg_pool2d(out, 1).flatten(1))


def resnet18_gn(input_shape: Sequence[int], num_classes: int, groups: int = 2) -> nn.Module:
    """ResNet-18 (CIFAR variant) with GroupNorm of ``groups`` groups (Hsieh et al. 2020 use 2).

    Args:
        input_shape: (channels, height, width), at least 4x4 pixels (CIFAR: 3x32x32).
        num_classes: outputs of the classifier.
        groups: GroupNorm groups; must divide 64.
    """
    if len(input_shape) != 3 or min(input_shape[1:]) < 4:
        raise ConfigError(f"model: resnet18_gn needs image inputs (channels, height, width) of at least 4x4 pixels; "
                          f"this dataset's inputs have shape {tuple(input_shape)}")
    require(isinstance(groups, int) and groups >= 1 and 64 % groups == 0, "model.groups",
            "an integer >= 1 that divides 64", groups)
    return ResNetGN(input_shape[0], num_classes, (2, 2, 2, 2), groups)
