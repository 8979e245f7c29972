"""Federated Averaging (FedAvg).

McMahan, Moore, Ramage, Hampson, Agüera y Arcas. "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017 (Algorithm 1). Each sampled client runs E
epochs of minibatch SGD from the global model; the server replaces the model with the
sample-weighted mean ``x <- sum_k n_k y_k / sum_k n_k``.

``upload="pseudo_gradient"`` sends ``x - y_k`` instead and the server steps
``x <- x - server_lr * mean_k(x - y_k)`` (Reddi et al., 2021, "Adaptive Federated
Optimization", Algorithm 1 with SGD as server optimizer); with ``server_lr = 1`` both agree.
"""

from __future__ import annotations

from typing import Sequence

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, delta, mean_upload, params_only
from fedbench.errors import require, require_choice


def fedavg(upload: str = "weights", server_lr: float = 1.0, drop_stragglers: bool = True) -> Algorithm:
    """FedAvg.

    Args:
        upload: ``weights`` (clients send y_k) or ``pseudo_gradient`` (clients send x - y_k).
        server_lr: server step size on the averaged pseudo-gradient (``pseudo_gradient`` only).
        drop_stragglers: discard clients that do not finish their epochs (FedProx paper's FedAvg baseline).
    """
    require_choice(upload, "algorithm.upload", ["weights", "pseudo_gradient"])
    require(server_lr > 0, "algorithm.server_lr", "> 0", server_lr)

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        body = local.params if upload == "weights" else delta(server["params"], local.params)
        return Upload(local.client, {upload: body}, local.num_samples), client

    def server_update(server: State, uploads: Sequence[Upload]) -> tuple[State, dict[str, float]]:
        avg = mean_upload(uploads, upload)
        params = avg if upload == "weights" else server["params"] - server_lr * avg
        return {**server, "params": params}, {}

    return Algorithm("fedavg", params_only, client_upload, server_update, drop_stragglers=drop_stragglers,
                     options={"upload": upload, "server_lr": server_lr})
