"""q-FFL, solved by q-FedAvg: fair resource allocation in federated learning.

Li, Sanjabi, Beirami, Smith, "Fair Resource Allocation in Federated Learning", ICLR 2020. q-FFL minimizes
``sum_k p_k F_k(w)^(q+1) / (q + 1)``: q = 0 is FedAvg's objective, larger q weighs the clients with larger losses
more (a more uniform accuracy across clients). q-FedAvg (the paper's Algorithm 2): each sampled client k computes its
loss F_k(w^t) at the global model on its training data, runs E local epochs of SGD to w_k, and sends::

    Delta_k = F_k(w^t)^q  L (w^t - w_k)
    h_k     = q F_k(w^t)^(q-1) ||L (w^t - w_k)||^2 + L F_k(w^t)^q

and the server steps ``w^{t+1} = w^t - sum_k Delta_k / sum_k h_k``. L is the Lipschitz estimate, 1 / lr as in the
paper's code (``lipschitz: null``), and F_k gets 1e-10 added before the powers (the code's guard). With q = 0,
h_k = L and the step is the unweighted mean of the clients' models: FedAvg with equal client weights (tested).

The clients report F_k(w^t) through ``start_loss`` (the task loss of the start model on their whole training data,
evaluated before training, in eval mode). Uploads are Delta_k and the scalar h_k (one float more than FedAvg).
The paper samples clients with probability proportional to their data; fedbench samples them uniformly
(``client_sampling``). The fairness it aims at shows in per-client evaluation's ``client_accuracy_var`` (the
variance of the clients' accuracies) and ``client_accuracy_p10``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, params_only
from fedbench.errors import require
from fedbench.params import weighted_sum

GUARD = 1e-10  # the reference code's floor on F_k before its powers


def qffl(q: float = 1.0, lipschitz: float | None = None) -> Algorithm:
    """q-FedAvg.

    Args:
        q: the fairness exponent (>= 0; the paper tries 0.001 to 15); 0 is FedAvg with equal client weights.
        lipschitz: L (> 0); null: 1 / lr, the client learning rate.
    """
    require(q >= 0, "algorithm.q", ">= 0", q)
    require(lipschitz is None or lipschitz > 0, "algorithm.lipschitz", "null (1 / lr) or > 0", lipschitz)

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        lip = 1.0 / local.lr if lipschitz is None else lipschitz
        loss = local.start_loss + GUARD
        dw = lip * (server["params"] - local.params)
        h = q * loss ** (q - 1) * float(dw.double().pow(2).sum()) + lip * loss**q
        tensors = {"delta": loss**q * dw, "h": torch.tensor([h], dtype=dw.dtype, device=dw.device)}
        return Upload(local.client, tensors, local.num_samples), client

    def server_update(server: State, uploads: Sequence[Upload]) -> tuple[State, dict[str, float]]:
        total_h = sum(float(u.tensors["h"]) for u in uploads)
        step = weighted_sum([u.tensors["delta"] for u in uploads], [1.0 / total_h] * len(uploads))
        return {**server, "params": server["params"] - step}, {"qffl_h": total_h}

    return Algorithm("qffl", params_only, client_upload, server_update, start_loss=True,
                     options={"q": q, "lipschitz": lipschitz})
