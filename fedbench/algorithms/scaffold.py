"""SCAFFOLD: stochastic controlled averaging.

Karimireddy, Kale, Mohri, Reddi, Stich, Suresh. "SCAFFOLD: Stochastic Controlled Averaging for
Federated Learning", ICML 2020 (Algorithm 1). Local steps are corrected for client drift,
``y <- y - lr (g_i(y) - c_i + c)``, implemented as the local loss term ``<c - c_i, y>`` whose
gradient is exactly ``c - c_i``. After K local steps the client control variate becomes

* option I:  ``c_i+ = g_i(x)``, the full local gradient at the server model, or
* option II: ``c_i+ = c_i - c + (x - y_i) / (K lr)``.

Clients upload ``dy_i = y_i - x`` and ``dc_i = c_i+ - c_i`` (both counted on the wire); the server
sets ``x <- x + server_lr * mean(dy_i)`` and ``c <- c + (1/N) sum(dc_i)`` over all N clients. Any
``server_optimizer`` can take the model step on the pseudo-gradient ``-mean(dy_i)`` (plain SGD with
``lr = eta_g`` is the paper's; "SCAFFOLD with a server Adam" is ``server_optimizer=adam``).
Every client's ``c_i`` persists across rounds (zero until first sampled). As in the paper, the
means over clients are unweighted.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, mean_upload, server_opt
from fedbench.errors import require, require_choice
from fedbench.params import weighted_sum
from fedbench.server_optimizers import ServerOptimizer, apply


def scaffold(num_clients: int, server_lr: float | None = None, option: str = "II",
             server_optimizer: ServerOptimizer | None = None) -> Algorithm:
    """SCAFFOLD.

    Args:
        num_clients: N, the total number of clients (the config passes ``${num_clients}``).
        server_lr: shorthand for ``server_optimizer=sgd(lr=server_lr)``, the global step size eta_g
            (1 in most of the paper's experiments).
        option: control-variate update, ``I`` or ``II`` (the paper's default).
        server_optimizer: the server's model step (default: SGD with eta_g = 1).
    """
    require(num_clients >= 1, "algorithm.num_clients", ">= 1", num_clients)
    require_choice(option, "algorithm.option", ["I", "II"])
    opt = server_opt(server_optimizer, server_lr)

    def init(params: Tensor) -> State:
        return {"params": params.clone(), "c": torch.zeros_like(params), **opt.init(params)}

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
        stepped = apply(opt, server, -mean_upload(uploads, "delta", weighted=False))
        c = server["c"] + weighted_sum([u.tensors["delta_c"] for u in uploads], [1.0 / num_clients] * len(uploads))
        return {**stepped, "c": c}, {}

    return Algorithm("scaffold", init, client_upload, server_update, local_loss=correction, init_client=init_client,
                     broadcast=("params", "c"), start_gradient=option == "I",
                     options={"option": option, "server_optimizer": opt.name, **opt.options})
