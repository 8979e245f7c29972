"""The in-memory dataset record every loader returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class FederatedData:
    """Train/test tensors plus, for naturally federated data, each user's train (and test) indices.

    Attributes:
        name: dataset name, for logs and reports.
        x_train, y_train, x_test, y_test: features shaped ``(N, *input_shape)`` (float32, or int64 token ids
            for text) and int64 labels: ``(N,)``, or ``(N, T)`` per-token targets for sequence tasks (padded
            positions hold -100, PyTorch's ``ignore_index``).
        num_classes: number of label classes (the vocabulary size for next-token targets).
        groups: per-user train indices for naturally federated data (``None`` otherwise); ``partitioner=natural``
            makes one client of each.
        test_groups: per-user indices into the test set, aligned with ``groups``, where the dataset keeps each
            user's own test split (LEAF); the test set is then the union of these splits, as LEAF evaluates.
            Per-client evaluation (:mod:`fedbench.client_eval`) reads them.
        train_columns: per-training-sample metadata a partitioner may read, by name (CIFAR-100's
            ``coarse_label``, a Hugging Face dataset's ``writer_id``, ...). A partitioner declares the
            columns it needs (:mod:`fedbench.partition.columns`); nothing looks them up by dataset name.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    groups: list[np.ndarray] | None = None
    test_groups: list[np.ndarray] | None = None
    train_columns: Mapping[str, np.ndarray] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def train_labels(self) -> np.ndarray:
        """One label per training sample: the label, or for per-token targets the sequence's last target
        (the next token after the sequence), which partitioners and the partition picture use."""
        y = self.y_train.numpy()
        return y if y.ndim == 1 else y[:, -1]


def stratified_split(
    y: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train/test keeping each class's share (seeded)."""
    train, test = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def as_tensors(x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
    """float32 features and int64 labels."""
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
