"""Model builders: ``builder(input_shape, num_classes) -> nn.Module``.

The YAMLs in ``conf/model`` use ``_partial_: true``; ``run`` fills in the dataset's shape.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from fedbench.errors import ConfigError, require


def _image_input(name: str, input_shape: Sequence[int], min_side: int, channels: int | None = None) -> None:
    """Convolutional models need (channels, height, width) inputs of at least ``min_side`` pixels (and, for a model
    built for one kind of image, that many ``channels``)."""
    if len(input_shape) != 3 or min(input_shape[1:]) < min_side:
        raise ConfigError(f"model: {name} needs image inputs (channels, height, width) of at least {min_side}x{min_side} "
                          f"pixels; this dataset's inputs have shape {tuple(input_shape)} (use model=mlp or logreg)")
    if channels is not None and input_shape[0] != channels:
        raise ConfigError(f"model: {name} is built for {channels}-channel images; this dataset's inputs have shape "
                          f"{tuple(input_shape)} ({input_shape[0]} channel(s)): use model=cnn or mlp for them")


def logreg(input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Multinomial logistic regression (softmax regression), as in FedProx's Synthetic experiments."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes))


def mlp(input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (200, 200),
        batch_norm: bool = False) -> nn.Module:
    """McMahan et al. (2017)'s "2NN": fully connected, two hidden layers of 200 ReLU units by default.
    ``batch_norm`` puts a BatchNorm1d (Ioffe & Szegedy 2015) before each ReLU: a model with buffers."""
    require(all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden), "model.hidden",
            "a list of layer widths, each an integer >= 1 ([] for none)", list(hidden))
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), *([nn.BatchNorm1d(h)] if batch_norm else []), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _conv_stack(channels: int, widths: Sequence[int], kernel: int, padding: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(channels, w, kernel, padding=padding), nn.ReLU(), nn.MaxPool2d(2)]
        channels = w
    return layers


def _flat_size(stack: nn.Module, input_shape: Sequence[int]) -> int:
    import torch

    with torch.no_grad():
        return stack(torch.zeros(1, *input_shape)).numel()


def cnn(input_shape: Sequence[int], num_classes: int, fc: int = 512) -> nn.Module:
    """McMahan et al. (2017)'s MNIST CNN: 5x5 conv 32 and 64 ('same' padding), each with 2x2 max-pool,
    a fully connected layer of 512 ReLU units and a softmax output (1,663,370 parameters on MNIST)."""
    _image_input("cnn", input_shape, 4)
    require(isinstance(fc, int) and fc >= 1, "model.fc", "an integer >= 1", fc)
    features = nn.Sequential(*_conv_stack(input_shape[0], (32, 64), kernel=5, padding=2), nn.Flatten())
    size = _flat_size(features, input_shape)
    return nn.Sequential(features, nn.Linear(size, fc), nn.ReLU(), nn.Linear(fc, num_classes))


def cifar_cnn(input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """A small CIFAR CNN (two 5x5 conv layers of 64 with max-pool, FC 384 and 192), after the
    TensorFlow CIFAR-10 tutorial model McMahan et al. (2017) used for their CIFAR experiments."""
    _image_input("cifar_cnn", input_shape, 4, channels=3)
    features = nn.Sequential(*_conv_stack(input_shape[0], (64, 64), kernel=5, padding=2), nn.Flatten())
    size = _flat_size(features, input_shape)
    return nn.Sequential(
        features, nn.Linear(size, 384), nn.ReLU(), nn.Linear(384, 192), nn.ReLU(), nn.Linear(192, num_classes)
    )
