"""FedADMM: consensus ADMM with partial participation.

The global-variable consensus problem ``min sum_i f_i(theta_i) s.t. theta_i = z`` solved by
ADMM (Boyd, Parikh, Chu, Peleato, Eckstein, "Distributed Optimization and Statistical Learning
via the Alternating Direction Method of Multipliers", 2011, Section 7.1), in the federated,
partial-participation form of Wang, Marella, Anderson, "FedADMM: A Federated Primal-Dual
Algorithm Allowing Partial Participation", IEEE CDC 2022 (server step 1). Sampled client i:

    theta_i <- approx. argmin f_i(theta) + <y_i, theta> + rho/2 ||theta - z||^2   (local SGD)
    y_i     <- y_i + rho (theta_i - z)                                           (dual update)
    u_i     <- theta_i + y_i / rho, upload du_i = u_i(new) - u_i(old)

The server keeps ``z = (1/N) sum_i u_i`` over all N clients (non-participants keep their
last ``u_i``; every ``u_i`` starts at the initial model): ``z <- z + (1/N) sum du_i``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload
from fedbench.errors import require
from fedbench.params import weighted_sum


def fedadmm(num_clients: int, rho: float = 0.01) -> Algorithm:
    """FedADMM.

    Args:
        num_clients: N, total clients (the config passes ``${num_clients}``).
        rho: augmented-Lagrangian penalty (> 0).
    """
    require(num_clients >= 1, "algorithm.num_clients", ">= 1", num_clients)
    require(rho > 0, "algorithm.rho", "> 0", rho)

    def init(params: Tensor) -> State:
        # "initial" is the u_i every client starts from; it is not broadcast each round
        return {"params": params.clone(), "initial": params.clone()}

    def init_client(server: State) -> State:
        return {"dual": torch.zeros_like(server["params"]), "augmented": server["initial"].clone()}

    def lagrangian(w: Tensor, server: State, client: State) -> Tensor:
        return torch.dot(client["dual"], w) + 0.5 * rho * (w - server["params"]).pow(2).sum()

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        dual = client["dual"] + rho * (local.params - server["params"])
        augmented = local.params + dual / rho
        upload = Upload(local.client, {"delta_u": augmented - client["augmented"]}, local.num_samples)
        return upload, {"dual": dual, "augmented": augmented}

    def server_update(server: State, uploads: Sequence[Upload]) -> tuple[State, dict[str, float]]:
        step = weighted_sum([u.tensors["delta_u"] for u in uploads], [1.0 / num_clients] * len(uploads))
        return {**server, "params": server["params"] + step}, {}

    return Algorithm("fedadmm", init, client_upload, server_update, local_loss=lagrangian, init_client=init_client,
                     options={"rho": rho})
