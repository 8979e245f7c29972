"""q-FedAvg: fair resource allocation by q-Fair Federated Learning (q-FFL).

Li, Sanjabi, Beirami, Smith. "Fair Resource Allocation in Federated Learning", ICLR 2020 (Algorithm 3). q-FFL
minimizes ``sum_k p_k F_k^{q+1}(w) / (q + 1)``: q > 0 weighs clients with a larger loss more, q = 0 is FedAvg's
objective. Each sampled client k evaluates its loss ``F_k(w^t)`` at the global model (on all its training data,
before training), runs local SGD to ``y_k`` and sends

    Delta_k = F_k^q(w^t) L (w^t - y_k)
    h_k     = q F_k^{q-1}(w^t) ||L (w^t - y_k)||^2 + L F_k^q(w^t)

with ``L = 1 / lr`` (the paper's Lipschitz estimate from the local step size); the server steps
``w^{t+1} = w^t - sum_k Delta_k / sum_k h_k`` (unweighted by sample counts: the paper samples clients with
probability p_k). Like Flower's ``QFedAvg``, ``F_k`` is taken as ``F_k + 1e-10`` so that a zero loss stays defined.
With q = 0 the step is the unweighted mean of the clients' models.
"""

from __future__ import annotations

from typing import Sequence

import torch

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, params_only
from fedbench.errors import require

EPS = 1e-10  # Flower's QFedAvg adds it to the loss too (flwr.serverapp.strategy.qfedavg.compute_delta_and_h)


def qfedavg(q: float = 0.1, lr: float = 0.1) -> Algorithm:
    """q-FedAvg.

    Args:
        q: fairness (0 = FedAvg's objective, unweighted mean); the paper tunes it in {0.001, ..., 15}.
        lr: the clients' learning rate, whose inverse is the Lipschitz estimate L (the config passes ``${lr}``).
    """
    require(q >= 0, "algorithm.q", ">= 0", q)
    require(lr > 0, "algorithm.lr", "> 0", lr)
    lipschitz = 1.0 / lr

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        loss = float(local.start_loss) + EPS
        grad = lipschitz * (server["params"] - local.params)
        h = q * loss ** (q - 1) * float(grad.double().pow(2).sum()) + lipschitz * loss**q
        delta = loss**q * grad
        return Upload(local.client, {"delta": delta, "h": torch.tensor([h], dtype=delta.dtype)},
                      local.num_samples), client

    def server_update(server: State, uploads: Sequence[Upload]) -> tuple[State, dict[str, float]]:
        total = torch.stack([u.tensors["delta"].double() for u in uploads]).sum(0)
        h = sum(float(u.tensors["h"]) for u in uploads)
        params = (server["params"].double() - total / h).to(server["params"].dtype)
        return {**server, "params": params}, {"qffl_h": h}

    return Algorithm("qfedavg", params_only, client_upload, server_update, start_loss=True,
                     options={"q": q, "lr": lr})
