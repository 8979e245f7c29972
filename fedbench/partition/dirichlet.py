"""Label-skewed partition with Dirichlet proportions.

Hsu, Qi, Brown. "Measuring the Effects of Non-Identical Data Distribution for Federated
Visual Classification", 2019: for every class, client shares are drawn from Dir(alpha);
small alpha gives clients few dominant labels, large alpha approaches IID. Draws are
repeated until every client holds ``min_samples``; a bounded number of attempts makes an
infeasible request a clear error instead of an endless loop.
"""

from __future__ import annotations

import numpy as np

from fedbench.errors import ConfigError, require
from fedbench.partition.common import Partitioner, check_request
from fedbench.seeding import numpy_generator


def _draw(labels: np.ndarray, num_clients: int, alpha: float, rng: np.random.Generator) -> list[list]:
    parts: list[list] = [[] for _ in range(num_clients)]
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        cuts = (np.cumsum(rng.dirichlet(np.full(num_clients, alpha))) * len(idx)).astype(int)[:-1]
        for client, piece in enumerate(np.split(idx, cuts)):
            parts[client].extend(piece.tolist())
    return parts


def dirichlet(alpha: float = 0.5, min_samples: int = 10, max_attempts: int = 1000) -> Partitioner:
    """Per-class Dir(alpha) shares over clients, redrawn until each client has ``min_samples``.

    Args:
        alpha: concentration (> 0); 0.1 is strongly skewed, 100 is close to IID.
        min_samples: smallest client size accepted (>= 1).
        max_attempts: redraws before giving up with an error.
    """
    require(alpha > 0, "partitioner.alpha", "> 0", alpha)
    require(min_samples >= 1, "partitioner.min_samples", ">= 1", min_samples)
    require(max_attempts >= 1, "partitioner.max_attempts", ">= 1", max_attempts)

    def partition(labels, num_clients, seed, groups=None) -> list[np.ndarray]:
        check_request(labels, num_clients, min_samples)
        rng = numpy_generator(seed, "partition-dirichlet")
        for _ in range(max_attempts):
            parts = _draw(labels, num_clients, alpha, rng)
            if min(len(p) for p in parts) >= min_samples:
                return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
        raise ConfigError(
            f"partitioner.min_samples={min_samples} could not be met in {max_attempts} Dirichlet draws "
            f"(alpha={alpha}, num_clients={num_clients}, {len(labels)} samples); "
            "lower partitioner.min_samples or num_clients, or raise partitioner.alpha"
        )

    return partition
