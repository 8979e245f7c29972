"""Pathological non-IID shards (McMahan et al., 2017).

McMahan, Moore, Ramage, Hampson, Agüera y Arcas. "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017, Section 3: sort the data by label, cut it
into ``num_clients * shards_per_client`` shards and give each client ``shards_per_client``
of them (MNIST: 200 shards of 300, 2 per client). Two layouts:

* ``label_pure`` (default): shards never straddle two labels: each class (shuffled) is cut into a
  number of shards proportional to its size, so every client holds at most ``shards_per_client``
  labels, as the paper intends;
* ``sorted``: the paper's literal procedure: a stable sort of the training set by label, cut in
  that order into equal consecutive shards; a shard at a class boundary holds two labels, so a
  few clients get up to 2 x ``shards_per_client`` labels on unequal classes (MNIST).

Shards are dealt to clients by a seeded permutation in both layouts.
"""

from __future__ import annotations

import numpy as np

from fedbench.errors import ConfigError, require, require_choice
from fedbench.partition.common import Partitioner, check_request
from fedbench.seeding import numpy_generator


def _shards_per_class(sizes: np.ndarray, total: int) -> np.ndarray:
    """Largest-remainder apportionment of ``total`` shards, at least one per class."""
    quota = sizes / sizes.sum() * (total - len(sizes))
    counts = np.floor(quota).astype(int) + 1
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def sorted_shards(labels: np.ndarray, total: int) -> list[np.ndarray]:
    """The paper's shards: the stable label order cut into ``total`` consecutive near-equal pieces."""
    return np.array_split(np.argsort(labels, kind="stable"), total)


def shards(shards_per_client: int = 2, layout: str = "label_pure") -> Partitioner:
    """Label-sorted shards, ``shards_per_client`` per client (>= 1); ``layout`` label_pure | sorted."""
    require(shards_per_client >= 1, "partitioner.shards_per_client", ">= 1", shards_per_client)
    require_choice(layout, "partitioner.layout", ["label_pure", "sorted"])

    def partition(labels, num_clients, seed, groups=None) -> list[np.ndarray]:
        total = num_clients * shards_per_client
        check_request(labels, num_clients, shards_per_client)
        classes, sizes = np.unique(labels, return_counts=True)
        if total < len(classes):
            raise ConfigError(
                f"num_clients x partitioner.shards_per_client (= {total}) must be >= the {len(classes)} "
                "classes, so that each shard holds one label"
            )
        rng = numpy_generator(seed, "partition-shards")
        if layout == "sorted":
            pieces = sorted_shards(labels, total)
        else:
            pieces = [piece for label, count in zip(classes, _shards_per_class(sizes, total))
                      for piece in np.array_split(rng.permutation(np.flatnonzero(labels == label)), count)]
        if min(len(p) for p in pieces) == 0:
            raise ConfigError(f"num_clients x partitioner.shards_per_client (= {total}) leaves empty shards")
        owner = rng.permutation(total)
        return [np.sort(np.concatenate([pieces[s] for s in owner[c::num_clients]])) for c in range(num_clients)]

    return partition
