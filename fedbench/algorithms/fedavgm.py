"""FedAvgM: FedAvg with server momentum.

Hsu, Qi, Brown. "Measuring the Effects of Non-Identical Data Distribution for Federated Visual
Classification", 2019 (Section 3). With the mean pseudo-gradient
``delta = sum_i p_i (x - y_i)``: ``v <- beta v + delta``, ``x <- x - server_lr v``.
With ``momentum = 0`` and ``server_lr = 1`` it is FedAvg.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, delta, mean_upload
from fedbench.errors import require


def fedavgm(server_lr: float = 1.0, momentum: float = 0.9) -> Algorithm:
    """FedAvgM.

    Args:
        server_lr: server step size.
        momentum: server momentum beta in [0, 1) (the paper sweeps 0 to 0.997; 0.9 is common).
    """
    require(server_lr > 0, "algorithm.server_lr", "> 0", server_lr)
    require(0 <= momentum < 1, "algorithm.momentum", "in [0, 1)", momentum)

    def init(params: Tensor) -> State:
        return {"params": params.clone(), "velocity": torch.zeros_like(params)}

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        return Upload(local.client, {"delta": delta(server["params"], local.params)}, local.num_samples), client

    def server_update(server: State, uploads: Sequence[Upload]) -> tuple[State, dict[str, float]]:
        velocity = momentum * server["velocity"] + mean_upload(uploads, "delta")
        return {"params": server["params"] - server_lr * velocity, "velocity": velocity}, {}

    return Algorithm("fedavgm", init, client_upload, server_update, options={"server_lr": server_lr, "momentum": momentum})
