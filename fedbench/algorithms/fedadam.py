"""FedAdam (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2).

The server applies Adam-style adaptive steps to the mean pseudo-gradient; the shared update
rules and defaults are documented in :mod:`fedbench.algorithms.fedopt`.
"""

from __future__ import annotations

from fedbench.algorithms.base import Algorithm
from fedbench.algorithms.fedopt import fedopt


def fedadam(server_lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3,
           initial_accumulator: float | None = None) -> Algorithm:
    """FedAdam; see :func:`fedbench.algorithms.fedopt.fedopt` for the arguments."""
    return fedopt("adam", server_lr, beta1, beta2, tau, initial_accumulator)
