"""FedDyn: federated learning with dynamic regularization.

Acar, Zhao, Matas, Mattina, Whatmough, Saligrama. "Federated Learning Based on Dynamic
Regularization", ICLR 2021 (Algorithm 1). Client k minimizes
``L_k(w) - <g_k, w> + alpha/2 ||w - x||^2`` where ``g_k`` (its state, 0 at first) tracks
``grad L_k`` at its last local model; after training to ``w_k``:
``g_k <- g_k - alpha (w_k - x)``. The server keeps ``h``:
``h <- h - alpha (1/N) sum_{k in P} (w_k - x)`` over all N clients, and sets
``x <- mean_{k in P}(w_k) - h / alpha`` (unweighted, as in the paper). A ``server_optimizer``
other than plain SGD with lr 1 steps toward that model instead of jumping to it.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, server_opt
from fedbench.errors import require
from fedbench.params import mean
from fedbench.server_optimizers import ServerOptimizer, move_toward


def feddyn(num_clients: int, alpha: float = 0.01, server_optimizer: ServerOptimizer | None = None) -> Algorithm:
    """FedDyn.

    Args:
        num_clients: N, total clients (the config passes ``${num_clients}``).
        alpha: regularization strength (> 0); the paper uses {0.1, 0.01, 0.001}.
        server_optimizer: how the server moves to ``mean(w_k) - h / alpha`` (default: straight there).
    """
    require(num_clients >= 1, "algorithm.num_clients", ">= 1", num_clients)
    require(alpha > 0, "algorithm.alpha", "> 0", alpha)
    opt = server_opt(server_optimizer)

    def init(params: Tensor) -> State:
        return {"params": params.clone(), "h": torch.zeros_like(params), **opt.init(params)}

    def init_client(server: State) -> State:
        return {"grad": torch.zeros_like(server["params"])}

    def dynamic(w: Tensor, server: State, client: State) -> Tensor:
        return -torch.dot(client["grad"], w) + 0.5 * alpha * (w - server["params"]).pow(2).sum()

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        grad = client["grad"] - alpha * (local.params - server["params"])
        return Upload(local.client, {"weights": local.params}, local.num_samples), {"grad": grad}

    def server_update(server: State, uploads: Sequence[Upload]) -> tuple[State, dict[str, float]]:
        models = [u.tensors["weights"] for u in uploads]
        drift = sum((w - server["params"] for w in models), torch.zeros_like(server["params"]))
        h = server["h"] - alpha / num_clients * drift
        return move_toward(opt, {**server, "h": h}, mean(models) - h / alpha), {}

    return Algorithm("feddyn", init, client_upload, server_update, local_loss=dynamic, init_client=init_client,
                     options={"alpha": alpha, "server_optimizer": opt.name, **opt.options})
