"""Adaptive server optimizers: the shared update of FedAdagrad, FedAdam and FedYogi.

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar, McMahan. "Adaptive Federated
Optimization", ICLR 2021 (Algorithm 2). With the mean pseudo-gradient
``delta = sum_i p_i (y_i - x)``:

    m <- beta1 m + (1 - beta1) delta
    v <- v + delta^2                                   (FedAdagrad)
    v <- v - (1 - beta2) delta^2 sign(v - delta^2)     (FedYogi)
    v <- beta2 v + (1 - beta2) delta^2                 (FedAdam)
    x <- x + server_lr m / (sqrt(v) + tau)

No bias correction, ``v`` starts at ``tau^2`` (the paper's v_{-1} >= tau^2). Defaults
beta1 = 0.9, beta2 = 0.99, tau = 1e-3 are the paper's (Section 5). With beta1 = 0, beta2 = 1 (Adam),
tau = 1 and ``initial_accumulator = 0``, FedAdam is FedAvg with server step ``server_lr``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, mean_upload
from fedbench.errors import require, require_choice

METHODS = ("adagrad", "adam", "yogi")


def second_moment(method: str, v: Tensor, delta: Tensor, beta2: float) -> Tensor:
    """The per-method update of the second-moment estimate ``v``."""
    d2 = delta * delta
    if method == "adagrad":
        return v + d2
    if method == "yogi":
        return v - (1 - beta2) * d2 * torch.sign(v - d2)
    return beta2 * v + (1 - beta2) * d2


def fedopt(method: str, server_lr: float, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3,
           initial_accumulator: float | None = None) -> Algorithm:
    """An adaptive server optimizer (``method`` in adagrad, adam, yogi) over pseudo-gradients."""
    require_choice(method, "algorithm.method", METHODS)
    require(server_lr > 0, "algorithm.server_lr", "> 0", server_lr)
    require(0 <= beta1 < 1, "algorithm.beta1", "in [0, 1)", beta1)
    require(0 <= beta2 <= 1, "algorithm.beta2", "in [0, 1]", beta2)
    require(tau > 0, "algorithm.tau", "> 0", tau)
    v0 = tau**2 if initial_accumulator is None else initial_accumulator
    require(v0 >= 0, "algorithm.initial_accumulator", ">= 0 or null (tau^2)", v0)

    def init(params: Tensor) -> State:
        return {"params": params.clone(), "m": torch.zeros_like(params), "v": torch.full_like(params, v0)}

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        return Upload(local.client, {"delta": local.params - server["params"]}, local.num_samples), client

    def server_update(server: State, uploads: Sequence[Upload]) -> tuple[State, dict[str, float]]:
        delta = mean_upload(uploads, "delta")
        m = beta1 * server["m"] + (1 - beta1) * delta
        v = second_moment(method, server["v"], delta, beta2)
        params = server["params"] + server_lr * m / (v.sqrt() + tau)
        return {"params": params, "m": m, "v": v}, {}

    options = {"server_lr": server_lr, "beta1": beta1, "beta2": beta2, "tau": tau, "initial_accumulator": v0}
    return Algorithm(f"fed{method}", init, client_upload, server_update, options=options)
