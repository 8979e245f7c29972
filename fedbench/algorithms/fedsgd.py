"""Federated SGD (FedSGD).

McMahan et al., AISTATS 2017, Section 2 ("FederatedSGD"): every round each sampled client k
computes the gradient g_k of its loss on its local batch (the whole local data when
``batch_size`` is null, B = infinity) at the global model, and the server takes one step
``x <- x - lr * sum_k n_k g_k / sum_k n_k``.

``upload="weights"`` is the paper's equivalent form: each client takes one local step
``y_k = x - lr g_k`` and the server averages the weights; with plain SGD both give the
same model. Local epochs are ignored: FedSGD does one step per round.
"""

from __future__ import annotations

from typing import Sequence

from fedbench.algorithms.base import (Algorithm, Combine, LocalResult, State, Upload, combine_uploads, mean_combine,
                                     params_only)
from fedbench.errors import require, require_choice


def fedsgd(upload: str = "gradient", lr: float = 0.1) -> Algorithm:
    """FedSGD.

    Args:
        upload: ``gradient`` (clients send g_k) or ``weights`` (clients send x - lr g_k).
        lr: server step size for ``gradient`` uploads; the config passes the client ``lr``.
    """
    require_choice(upload, "algorithm.upload", ["gradient", "weights"])
    require(lr > 0, "algorithm.lr", "> 0", lr)

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        body = local.grad if upload == "gradient" else local.params
        return Upload(local.client, {upload: body}, local.num_samples), client

    def server_update(server: State, uploads: Sequence[Upload], combine: Combine = mean_combine
                      ) -> tuple[State, dict[str, float]]:
        avg = combine_uploads(uploads, upload, combine, server["params"] if upload == "weights" else None)
        params = server["params"] - lr * avg if upload == "gradient" else avg
        return {**server, "params": params}, {}

    work = "gradient" if upload == "gradient" else "train"
    return Algorithm(
        "fedsgd", params_only, client_upload, server_update, work=work, max_local_steps=1, averages_uploads=True,
        plain_clients=upload == "weights", plain_average=upload == "weights", options={"upload": upload}
    )
