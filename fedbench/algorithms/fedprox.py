"""FedProx.

Li, Sahu, Zaheer, Sanjabi, Talwalkar, Smith. "Federated Optimization in Heterogeneous
Networks", MLSys 2020 (Algorithm 2). Clients minimize ``F_k(w) + mu/2 ||w - w^t||^2``, the
proximal term keeping local models near the global one; the server averages like FedAvg (or, with
a ``server_optimizer``, steps on the pseudo-gradient like FedOpt: "FedProx with server momentum").
Unlike FedAvg in the paper's systems-heterogeneity experiments, FedProx aggregates the
partial work of stragglers (``drop_stragglers=False``). With ``mu = 0`` it is FedAvg.
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from fedbench.algorithms.base import Algorithm, State
from fedbench.algorithms.fedavg import fedavg
from fedbench.errors import require
from fedbench.server_optimizers import ServerOptimizer


def fedprox(mu: float = 0.01, drop_stragglers: bool = False, upload: str = "weights",
            server_optimizer: ServerOptimizer | None = None) -> Algorithm:
    """FedProx.

    Args:
        mu: proximal coefficient (>= 0); the paper tries {0.001, 0.01, 0.1, 1}.
        drop_stragglers: drop stragglers like FedAvg (False: keep their partial work, as FedProx does).
        upload: ``weights`` or ``pseudo_gradient`` (as FedAvg).
        server_optimizer: the server step (default: plain averaging).
    """
    require(mu >= 0, "algorithm.mu", ">= 0", mu)

    def proximal(w: Tensor, server: State, client: State) -> Tensor:
        return 0.5 * mu * (w - server["params"]).pow(2).sum()

    base = fedavg(upload=upload, drop_stragglers=drop_stragglers, server_optimizer=server_optimizer)
    return replace(base, name="fedprox", local_loss=proximal if mu > 0 else None, plain_clients=mu == 0,
                   options={"mu": mu, "drop_stragglers": drop_stragglers, **base.options})
