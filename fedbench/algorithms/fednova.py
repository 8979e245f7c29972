"""FedNova: normalized averaging for heterogeneous local work.

Wang, Liu, Liang, Joshi, Poor. "Tackling the Objective Inconsistency Problem in Heterogeneous
Federated Optimization", NeurIPS 2020 (Section 4, eq. 6). Client i takes tau_i local steps;
its cumulative update ``x - y_i = lr * sum_k a_ik g_ik`` is normalized by ``||a_i||_1`` into
``d_i = (x - y_i) / ||a_i||_1``, and the server steps
``x <- x - server_lr * tau_eff * sum_i p_i d_i`` with ``tau_eff = sum_i p_i ||a_i||_1`` and
``p_i = n_i / sum_j n_j`` (any ``server_optimizer`` may take that step on the pseudo-gradient
``tau_eff * sum_i p_i d_i``). For plain local SGD ``||a_i||_1 = tau_i``; with local momentum rho,
``||a_i||_1 = (tau_i - rho (1 - rho^tau_i) / (1 - rho)) / (1 - rho)``. With equal tau_i it is FedAvg.
Clients upload d_i and the scalar ||a_i||_1 (4 bytes, counted).
"""

from __future__ import annotations

from typing import Sequence

import torch

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, init_with, mean_upload, server_opt
from fedbench.errors import require
from fedbench.server_optimizers import ServerOptimizer, apply


def a_norm(steps: int, momentum: float) -> float:
    """``||a_i||_1`` of local SGD (with momentum ``rho``) after ``steps`` steps."""
    if momentum == 0:
        return float(steps)
    return (steps - momentum * (1 - momentum**steps) / (1 - momentum)) / (1 - momentum)


def fednova(server_lr: float | None = None, momentum: float = 0.0,
            server_optimizer: ServerOptimizer | None = None) -> Algorithm:
    """FedNova.

    Args:
        server_lr: shorthand for ``server_optimizer=sgd(lr=server_lr)`` (1 recovers the paper's update).
        momentum: the clients' local SGD momentum (the config passes ``${momentum}``).
        server_optimizer: the server step (default: SGD with lr 1).
    """
    require(0 <= momentum < 1, "algorithm.momentum", "in [0, 1)", momentum)
    opt = server_opt(server_optimizer, server_lr)

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        norm = a_norm(local.steps, momentum)
        tensors = {"d": (server["params"] - local.params) / norm, "a_norm": torch.tensor([norm], device=local.params.device)}
        return Upload(local.client, tensors, local.num_samples), client

    def server_update(server: State, uploads: Sequence[Upload]) -> tuple[State, dict[str, float]]:
        tau_eff = float(mean_upload(uploads, "a_norm"))
        d = mean_upload(uploads, "d")
        return apply(opt, server, tau_eff * d), {"tau_eff": tau_eff}

    return Algorithm("fednova", init_with(opt), client_upload, server_update,
                     options={"momentum": momentum, "server_optimizer": opt.name, **opt.options})
