"""Quantity skew: IID labels, client sizes drawn from a lognormal or power law.

Lognormal sizes follow LEAF / FedProx practice (Caldas et al., 2018; Li et al., 2020);
power-law sizes follow Li, Diao, Chen, He, "Federated Learning on Non-IID Data Silos:
An Experimental Study", ICDE 2022.
"""

from __future__ import annotations

import numpy as np

from fedbench.errors import require, require_choice
from fedbench.partition.common import Partitioner, check_request, split_by_counts
from fedbench.seeding import numpy_generator


def _sizes(rng, n: int, num_clients: int, law: str, sigma: float, exponent: float, floor: int) -> np.ndarray:
    draws = rng.lognormal(0.0, sigma, num_clients) if law == "lognormal" else rng.pareto(exponent, num_clients) + 1
    spare = n - floor * num_clients
    counts = np.floor(draws / draws.sum() * spare).astype(int) + floor
    counts[np.argsort(-draws)[: n - counts.sum()]] += 1  # hand out rounding leftovers
    return counts


def quantity(distribution: str = "lognormal", sigma: float = 1.0, exponent: float = 1.5, min_samples: int = 1) -> Partitioner:
    """IID labels with skewed client sizes.

    Args:
        distribution: ``lognormal`` (size ~ LogNormal(0, sigma)) or ``powerlaw`` (Pareto(exponent)).
        sigma: lognormal spread (> 0); larger is more skewed.
        exponent: Pareto shape (> 0); smaller is more skewed.
        min_samples: every client gets at least this many samples (>= 1).
    """
    require_choice(distribution, "partitioner.distribution", ["lognormal", "powerlaw"])
    require(sigma > 0, "partitioner.sigma", "> 0", sigma)
    require(exponent > 0, "partitioner.exponent", "> 0", exponent)
    require(min_samples >= 1, "partitioner.min_samples", ">= 1", min_samples)

    def partition(labels, num_clients, seed, groups=None) -> list[np.ndarray]:
        check_request(labels, num_clients, min_samples)
        rng = numpy_generator(seed, "partition-quantity")
        counts = _sizes(rng, len(labels), num_clients, distribution, sigma, exponent, min_samples)
        return split_by_counts(rng.permutation(len(labels)), counts)

    return partition
