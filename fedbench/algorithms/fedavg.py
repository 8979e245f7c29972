"""Federated Averaging (FedAvg), and with a server optimizer the FedOpt family.

McMahan, Moore, Ramage, Hampson, Agüera y Arcas. "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017 (Algorithm 1). Each sampled client runs E
epochs of minibatch SGD from the global model; the server replaces the model with the
sample-weighted mean ``x <- sum_k n_k y_k / sum_k n_k``.

With a ``server_optimizer`` (Reddi et al., "Adaptive Federated Optimization", ICLR 2021,
Algorithm 1) the server instead steps on the pseudo-gradient ``g = x - mean_k y_k``: plain SGD with
``lr = 1`` is the paper's FedAvg, ``momentum`` is FedAvgM (Hsu et al. 2019), ``adam`` / ``yogi`` /
``adagrad`` are FedAdam / FedYogi / FedAdagrad. The ``fedavgm`` and ``fedadam``-style algorithm
configs are presets of this one function.

``upload="pseudo_gradient"`` sends ``x - y_k`` instead of ``y_k``; the server update is the same
(up to float rounding), only what travels differs.
"""

from __future__ import annotations

from typing import Sequence

from fedbench.algorithms.base import (Algorithm, Combine, LocalResult, State, Upload, combine_uploads, delta, init_with,
                                     mean_combine, server_opt)
from fedbench.errors import require_choice
from fedbench.server_optimizers import ServerOptimizer, apply, move_toward


def fedavg(upload: str = "weights", server_lr: float | None = None, drop_stragglers: bool = True,
           server_optimizer: ServerOptimizer | None = None, name: str = "fedavg") -> Algorithm:
    """FedAvg (and FedAvgM, FedAdam, FedYogi, FedAdagrad through ``server_optimizer``).

    Args:
        upload: ``weights`` (clients send y_k) or ``pseudo_gradient`` (clients send x - y_k).
        server_lr: shorthand for ``server_optimizer=sgd(lr=server_lr)`` (Python callers).
        drop_stragglers: discard clients that do not finish their epochs (FedProx paper's FedAvg baseline).
        server_optimizer: the server step (default: SGD with lr 1, i.e. plain averaging).
        name: the name logs and reports use (the presets set ``fedavgm``, ``fedadam``, ...).
    """
    require_choice(upload, "algorithm.upload", ["weights", "pseudo_gradient"])
    opt = server_opt(server_optimizer, server_lr)

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        body = local.params if upload == "weights" else delta(server["params"], local.params)
        return Upload(local.client, {upload: body}, local.num_samples), client

    def server_update(server: State, uploads: Sequence[Upload], combine: Combine = mean_combine
                      ) -> tuple[State, dict[str, float]]:
        avg = combine_uploads(uploads, upload, combine, server["params"] if upload == "weights" else None)
        return (move_toward(opt, server, avg) if upload == "weights" else apply(opt, server, avg)), {}

    return Algorithm(name, init_with(opt), client_upload, server_update, drop_stragglers=drop_stragglers,
                     averages_uploads=True, plain_clients=True, plain_average=opt.replaces,
                     options={"upload": upload, "server_optimizer": opt.name, **opt.options})
