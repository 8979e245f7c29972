"""IID partition: a uniformly random split into near-equal client shards."""

from __future__ import annotations

import numpy as np

from fedbench.partition.common import Partitioner, check_request
from fedbench.seeding import numpy_generator


def iid() -> Partitioner:
    """Shuffle all samples and give each client ``n // N`` or ``n // N + 1`` of them."""

    def partition(labels, num_clients, seed, groups=None) -> list[np.ndarray]:
        check_request(labels, num_clients)
        order = numpy_generator(seed, "partition-iid").permutation(len(labels))
        return [np.sort(part) for part in np.array_split(order, num_clients)]

    return partition
