"""Pachinko allocation: CIFAR-100's split over coarse and fine labels (Reddi et al. 2021).

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar, McMahan, "Adaptive Federated Optimization", ICLR 2021,
after the Pachinko Allocation Method of Li & McCallum (ICML 2006): every client draws a distribution over the
coarse labels from a symmetric Dir(alpha) and, for every coarse label, a distribution over that coarse label's
fine labels from a symmetric Dir(beta). Each of the client's samples is drawn by picking a coarse label, then a
fine label, then an unused sample of that fine label (without replacement). A fine label whose samples run out
is removed from every client's coarse-to-fine distribution (renormalised), and a coarse label with no fine label
left from the coarse distributions. Clients are served one after the other, each with ``n // N`` samples (the
first ``n % N`` one more); Reddi et al. use alpha = 0.1, beta = 10 and 500 clients of 100 training images.
Should a client's remaining probability mass be exactly zero (a Dirichlet draw that underflowed), it draws
uniformly among the labels left.

The coarse labels come from the dataset's ``coarse_label`` training column (``dataset=cifar100``; a Hugging Face
CIFAR-100 keeps it too), declared through :class:`~fedbench.partition.columns.ColumnPartitioner`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fedbench.errors import ConfigError, require
from fedbench.partition.columns import ColumnPartitioner
from fedbench.partition.common import check_request
from fedbench.seeding import numpy_generator


def _pick(p: np.ndarray, alive: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn from ``p`` restricted to ``alive`` (renormalised; uniform over ``alive`` if no mass is left)."""
    w = np.where(alive, p, 0.0)
    total = w.sum()
    w = w / total if total > 0 else alive / alive.sum()
    return int(rng.choice(len(w), p=w))


def allocate(fine: np.ndarray, coarse_of_fine: np.ndarray, sizes: Sequence[int], coarse_p: np.ndarray,
             fine_p: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Deal the samples to clients, given their distributions.

    Args:
        fine: fine label of every sample, in ``0 .. F-1``.
        coarse_of_fine: ``(F,)`` the coarse label of each fine label, in ``0 .. C-1``.
        sizes: samples per client (summing to at most ``len(fine)``).
        coarse_p: ``(clients, C)`` each client's coarse-label distribution.
        fine_p: ``(clients, F)`` each client's coarse-to-fine distributions (entries of one coarse label sum to 1).
        rng: draws the labels and which sample of a label each draw takes.
    """
    num_coarse = int(coarse_of_fine.max()) + 1
    pools = [list(rng.permutation(np.flatnonzero(fine == f))) for f in range(len(coarse_of_fine))]
    fine_alive = np.array([len(p) > 0 for p in pools])
    coarse_alive = np.array([fine_alive[coarse_of_fine == c].any() for c in range(num_coarse)])
    members = [np.flatnonzero(coarse_of_fine == c) for c in range(num_coarse)]
    parts = []
    for client, size in enumerate(sizes):
        taken = []
        for _ in range(size):
            c = _pick(coarse_p[client], coarse_alive, rng)
            f = int(members[c][_pick(fine_p[client, members[c]], fine_alive[members[c]], rng)])
            taken.append(pools[f].pop())
            if not pools[f]:
                fine_alive[f] = False
                coarse_alive[c] = fine_alive[members[c]].any()
        parts.append(np.sort(np.asarray(taken, dtype=np.int64)))
    return parts


def coarse_map(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """``(F,)`` the coarse label of each fine label; every fine label must sit under exactly one coarse label."""
    num_fine = int(fine.max()) + 1
    out = np.full(num_fine, -1, dtype=np.int64)
    for f in range(num_fine):
        values = np.unique(coarse[fine == f])
        if len(values) > 1:
            raise ConfigError(f"partitioner=pachinko: fine label {f} appears under coarse labels {values.tolist()}; "
                              "each fine label must belong to one coarse label")
        out[f] = values[0] if len(values) else 0
    return out


def pachinko(alpha: float = 0.1, beta: float = 10.0, coarse_column: str = "coarse_label") -> ColumnPartitioner:
    """Pachinko allocation over the labels (fine) and the ``coarse_column`` training column (coarse).

    Args:
        alpha: Dirichlet concentration of each client's coarse-label distribution (> 0; Reddi et al.: 0.1).
        beta: Dirichlet concentration of each coarse-to-fine distribution (> 0; Reddi et al.: 10).
        coarse_column: the training column holding the coarse labels.
    """
    require(isinstance(alpha, (int, float)) and alpha > 0, "partitioner.alpha", "> 0", alpha)
    require(isinstance(beta, (int, float)) and beta > 0, "partitioner.beta", "> 0", beta)

    def partition(labels, num_clients, seed, groups, columns) -> list[np.ndarray]:
        check_request(labels, num_clients)
        fine, coarse = np.asarray(labels, dtype=np.int64), np.asarray(columns[coarse_column], dtype=np.int64)
        coarse_of_fine = coarse_map(fine, coarse)
        rng = numpy_generator(seed, "partition-pachinko")
        coarse_p = rng.dirichlet(np.full(int(coarse_of_fine.max()) + 1, float(alpha)), size=num_clients)
        fine_p = np.zeros((num_clients, len(coarse_of_fine)))
        for c in range(coarse_p.shape[1]):
            mine = np.flatnonzero(coarse_of_fine == c)
            if len(mine):
                fine_p[:, mine] = rng.dirichlet(np.full(len(mine), float(beta)), size=num_clients)
        sizes = [len(part) for part in np.array_split(np.arange(len(fine)), num_clients)]
        return allocate(fine, coarse_of_fine, sizes, coarse_p, fine_p, rng)

    return ColumnPartitioner("pachinko", (coarse_column,), partition)
