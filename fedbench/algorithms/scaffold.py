"""SCAFFOLD: stochastic controlled averaging.

Karimireddy, Kale, Mohri, Reddi, Stich, Suresh. "SCAFFOLD: Stochastic Controlled Averaging for
Federated Learning", ICML 2020 (Algorithm 1). Local steps are corrected for client drift,
``y <- y - lr (g_i(y) - c_i + c)``, implemented as the local loss term ``<c - c_i, y>`` whose
gradient is exactly ``c - c_i``. After K local steps the client control variate becomes

* option I:  ``c_i+ = g_i(x)``, the full local gradient at the server model, or
* option II: ``c_i+ = c_i - c + (x - y_i) / (K lr)``.

Clients upload ``dy_i = y_i - x`` and ``dc_i = c_i+ - c_i`` (both counted on the wire); the server
sets ``x <- x + server_lr * mean(dy_i)`` and ``c <- c + (1/N) sum(dc_i)`` over all N clients.
Every client's ``c_i`` persists across rounds (zero until first sampled). As in the paper, the
means over clients are unweighted.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, mean_upload
from fedbench.errors import require, require_choice
from fedbench.params import weighted_sum


def scaffold(num_clients: int, server_lr: float = 1.0, option: str = "II") -> Algorithm:
    """SCAFFOLD.

    Args:
        num_clients: N, the total number of clients (the config passes ``${num_clients}``).
        server_lr: global step size eta_g (1 in most of the paper's experiments).
        option: control-variate update, ``I`` or ``II`` (the paper's default).
    """
    require(num_clients >= 1, "algorithm.num_clients", ">= 1", num_clients)
    require(server_lr > 0, "algorithm.server_lr", "> 0", server_lr)
    require_choice(option, "algorithm.option", ["I", "II"])

    def init(params: Tensor) -> State:
        return {"params": params.clone(), "c": torch.zeros_like(params)}

    def init_client(server: State) -> State:
        return {"c": torch.zeros_like(server["params"])}

    def correction(w: Tensor, server: State, client: State) -> Tensor:
        return torch.dot(server["c"] - client["c"], w)

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        x, c, c_i = server["params"], server["c"], client["c"]
        if option == "I":
            c_new = local.grad
        else:
            c_new = c_i - c + (x - local.params) / (local.steps * local.lr)
        tensors = {"delta": local.params - x, "delta_c": c_new - c_i}
        return Upload(local.client, tensors, local.num_samples), {"c": c_new}

    def server_update(server: State, uploads: Sequence[Upload]) -> tuple[State, dict[str, float]]:
        params = server["params"] + server_lr * mean_upload(uploads, "delta", weighted=False)
        c = server["c"] + weighted_sum([u.tensors["delta_c"] for u in uploads], [1.0 / num_clients] * len(uploads))
        return {"params": params, "c": c}, {}

    return Algorithm("scaffold", init, client_upload, server_update, local_loss=correction, init_client=init_client,
                     broadcast=("params", "c"), start_gradient=option == "I",
                     options={"server_lr": server_lr, "option": option})
