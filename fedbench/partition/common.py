"""What every partitioner shares: its call signature, input checks, and label counts."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from fedbench.errors import ConfigError, require

Partitioner = Callable[[np.ndarray, int, int, "Sequence[np.ndarray] | None"], list[np.ndarray]]
"""``(labels, num_clients, seed, groups) -> one index array per client``; ``groups`` holds a
naturally federated dataset's per-device indices (only ``natural`` uses it)."""


def check_request(labels: np.ndarray, num_clients: int, min_samples: int = 1) -> None:
    """Reject requests no partition can satisfy, before any sampling starts."""
    require(num_clients >= 1, "num_clients", ">= 1", num_clients)
    if num_clients * min_samples > len(labels):
        raise ConfigError(
            f"num_clients ({num_clients}) x minimum samples per client ({min_samples}) must be <= "
            f"the {len(labels)} training samples"
        )


def label_counts(labels: np.ndarray, parts: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """``(num_clients, num_classes)`` matrix of how many samples of each label every client holds."""
    return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])


def split_by_counts(order: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """Cut ``order`` into consecutive pieces of the given sizes, each returned sorted."""
    bounds = np.cumsum([0, *counts])
    return [np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
