"""Natural partition: use the devices a naturally federated dataset comes with (e.g. Synthetic)."""

from __future__ import annotations

import numpy as np

from fedbench.errors import ConfigError
from fedbench.partition.common import Partitioner


def natural() -> Partitioner:
    """One client per device of the dataset; ``num_clients`` must equal the number of devices."""

    def partition(labels, num_clients, seed, groups=None) -> list[np.ndarray]:
        if groups is None:
            raise ConfigError("partitioner=natural needs a naturally federated dataset (e.g. dataset=synthetic)")
        if num_clients != len(groups):
            raise ConfigError(f"num_clients must equal the dataset's {len(groups)} devices for partitioner=natural (got {num_clients})")
        return [np.asarray(g, dtype=np.int64) for g in groups]

    return partition
