"""Naturally federated data built from per-user samples: LEAF's user sampling, minimum size and per-user split.

Caldas, Duddu, Wu, Li, Konečný, McMahan, Smith, Talwalkar, "LEAF: A Benchmark for Federated Settings", 2018.
LEAF prepares a dataset with ``preprocess.sh``: ``--sf`` samples users (``utils/sample.py --niid``: users in a
random order until their samples reach that fraction of all samples), ``-k`` drops users with fewer samples
(``utils/remove_users.py``) and ``-t sample`` splits each user's samples into train and test
(``utils/split_data.py --by_sample``, train fraction ``--tf``, 0.9 by default). These functions do the same on
data already in memory (seeded by fedbench's seeds, not LEAF's, and keeping whole users where LEAF truncates the
last sampled one), and assemble a :class:`~fedbench.data.base.FederatedData` with one group per user and each
user's own test split.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from fedbench.data.base import FederatedData
from fedbench.errors import ConfigError, require

Samples = tuple[np.ndarray, np.ndarray]  # (x, y) of one user


def check_sampling(fraction: float, min_samples: int, test_fraction: float) -> None:
    """The options every naturally federated loader shares (``dataset.fraction``, ``min_samples``, ``test_fraction``)."""
    require(isinstance(fraction, (int, float)) and 0 < fraction <= 1, "dataset.fraction", "in (0, 1]", fraction)
    require(isinstance(min_samples, int) and min_samples >= 0, "dataset.min_samples", "an integer >= 0", min_samples)
    require(isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1, "dataset.test_fraction", "in (0, 1)",
            test_fraction)


def keep_users(sizes: Sequence[int], fraction: float, min_samples: int, rng: np.random.Generator) -> list[int]:
    """Indices (in their original order) of the users kept: with ``fraction < 1``, whole users in a seeded random
    order until their samples reach ``fraction`` of all samples (LEAF's ``--sf``, niid); then those with at least
    ``min_samples`` samples (LEAF's ``-k``)."""
    chosen = range(len(sizes))
    if fraction < 1:
        order, goal, total, picked = rng.permutation(len(sizes)), fraction * sum(sizes), 0, []
        for u in order:
            if total >= goal:
                break
            picked.append(int(u))
            total += sizes[u]
        chosen = sorted(picked)
    return [u for u in chosen if sizes[u] >= min_samples]


def split_user(n: int, train_fraction: float, rng: np.random.Generator, gap: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """LEAF's ``split_data.py --by_sample`` for a user of ``n`` samples: ``max(1, int(train_fraction * n))`` train
    samples (1 when n = 2), the rest test; users with fewer than 2 samples get no test sample. With ``gap``
    (Shakespeare: 79) train is the first samples and test starts ``gap`` samples after them, so no test window
    overlaps a training one; otherwise the train samples are a random subset."""
    if n < 2:
        return np.arange(n), np.arange(0)
    n_train = 1 if n == 2 else max(1, int(train_fraction * n))
    if gap:
        return np.arange(n_train), np.arange(n_train + gap, n)
    train = np.sort(rng.choice(n, n_train, replace=False))
    return train, np.setdiff1d(np.arange(n), train)


def split_users(users: Sequence[Samples], test_fraction: float, rng: np.random.Generator,
                gap: int = 0) -> tuple[list[int], list[Samples], list[Samples]]:
    """Split every user's samples (:func:`split_user`); users left without train or test samples are dropped, as
    LEAF drops them. Returns the kept users' indices, their train and their test samples."""
    kept, train, test = [], [], []
    for u, (x, y) in enumerate(users):
        tr, te = split_user(len(y), 1 - test_fraction, rng, gap)
        if len(tr) and len(te):
            kept.append(u)
            train.append((x[tr], y[tr]))
            test.append((x[te], y[te]))
    return kept, train, test


def _offsets(parts: Sequence[Samples]) -> list[np.ndarray]:
    bounds = np.cumsum([0, *(len(y) for _, y in parts)])
    return [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _stack(parts: Sequence[Samples], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.concatenate([x for x, _ in parts]) if parts else np.zeros((0,))
    y = np.concatenate([y for _, y in parts]) if parts else np.zeros((0,))
    return torch.as_tensor(x, dtype=dtype), torch.as_tensor(y, dtype=torch.int64)


def assemble(name: str, train: Sequence[Samples], test: Sequence[Samples], num_classes: int,
             x_dtype: torch.dtype = torch.float32, columns: Mapping[str, np.ndarray] | None = None) -> FederatedData:
    """One FederatedData from aligned per-user train and test samples: ``groups`` and ``test_groups`` index each
    user's rows; the test set is the union of the users' test splits."""
    if not train:
        raise ConfigError(f"dataset {name}: no user is left after dataset.fraction / dataset.min_samples and the "
                          "per-user split; lower dataset.min_samples or raise dataset.fraction")
    x_train, y_train = _stack(train, x_dtype)
    x_test, y_test = _stack(test, x_dtype)
    return FederatedData(name, x_train, y_train, x_test, y_test, num_classes, groups=_offsets(train),
                         test_groups=_offsets(test), train_columns=columns)


def regroup(keys: np.ndarray) -> list[np.ndarray]:
    """Sample indices grouped by key, groups in order of first appearance (e.g. one group per ``writer_id``)."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # group number by first appearance
    order = np.argsort(rank[inverse], kind="stable")
    return np.split(order, np.cumsum(np.bincount(rank[inverse]))[:-1])


def per_user(x: np.ndarray, y: np.ndarray, groups: Sequence[np.ndarray]) -> list[Samples]:
    """Each group's (x, y)."""
    return [(x[g], y[g]) for g in groups]

