"""Drive an algorithm's pure functions by hand on 2-coordinate toy models."""

from __future__ import annotations

import torch

from fedbench.algorithms.base import Algorithm, LocalResult, State


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def local(client: int, params, n: int = 1, steps: int = 1, lr: float = 0.1, grad=None) -> LocalResult:
    return LocalResult(client, params, n, steps, train_loss=0.0, compute_s=0.0, lr=lr, grad=grad)


def play(alg: Algorithm, server: State, states: dict[int, State], results: list[LocalResult]) -> State:
    """One round: uploads from ``results`` (client states updated in place), then the server update."""
    uploads = []
    for res in results:
        state = states.get(res.client) or alg.init_client(server)
        upload, states[res.client] = alg.client_upload(server, res, state)
        uploads.append(upload)
    return alg.server_update(server, uploads)[0]


def local_loss_grad(alg: Algorithm, w, server: State, client: State) -> torch.Tensor:
    """Gradient of the algorithm's extra local loss term at ``w``."""
    w = w.clone().requires_grad_(True)
    alg.local_loss(w, server, client).backward()
    return w.grad


def close(a, b, tol: float = 1e-6) -> bool:
    return torch.allclose(a, b, atol=tol, rtol=0)
