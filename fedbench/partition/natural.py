"""Natural partition: use the users a naturally federated dataset comes with (LEAF writers and speaking roles,
Synthetic's devices, a Hugging Face dataset's ``client_key``)."""

from __future__ import annotations

import numpy as np

from fedbench.errors import ConfigError
from fedbench.partition.common import Partitioner


def natural() -> Partitioner:
    """One client per user (device) of the dataset; ``num_clients`` must equal the number of users."""

    def partition(labels, num_clients, seed, groups=None) -> list[np.ndarray]:
        if groups is None:
            raise ConfigError("partitioner=natural needs a naturally federated dataset (dataset=femnist, shakespeare, "
                              "synthetic, or hf with dataset.client_key)")
        if num_clients != len(groups):
            raise ConfigError(f"num_clients must equal the dataset's {len(groups):,} users for partitioner=natural "
                              f"(got {num_clients})")
        return [np.asarray(g, dtype=np.int64) for g in groups]

    return partition
