"""Ditto: fair and robust federated learning through personalization.

Li, Hu, Beirami, Smith, "Ditto: Fair and Robust Federated Learning Through Personalization", ICML 2021
(Algorithm 1). The global model is trained by FedAvg; every client also keeps a personal model v_k that it trains,
each time it is sampled, on its own objective regularized toward the global model it received::

    min_v  F_k(v) + lambda / 2 ||v - w^t||^2       (``personal_epochs`` of the task's SGD from v_k)

lambda interpolates between local training (lambda = 0: v_k never sees the global model) and the global model
(lambda -> infinity: v_k = w^t). The personal pass draws its own batches (purpose ``personal``), so the global
model is FedAvg's exactly, for every lambda (tested). v_k lives in the client state's ``algorithm`` field (checkpointed)
and never travels; per-client evaluation scores it (``personal_accuracy_*``). A client's personal model starts from
the first global model it receives (Ditto's code starts every v_k from w^0: the same under full participation); a
client never sampled has none and is evaluated with the global model.
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload
from fedbench.algorithms.fedavg import fedavg
from fedbench.errors import require
from fedbench.server_optimizers import ServerOptimizer


def ditto(lam: float = 0.1, personal_epochs: int = 1, upload: str = "weights", drop_stragglers: bool = True,
          server_optimizer: ServerOptimizer | None = None) -> Algorithm:
    """Ditto with FedAvg as the global solver.

    Args:
        lam: lambda >= 0, the proximal weight toward the global model (the paper tunes it in {0.01, 0.1, 1, 2}).
            Local SGD on the proximal term is stable for ``lr * lam < 2``.
        personal_epochs: local epochs of the personal update per round (the config passes ``local_epochs``).
        upload: ``weights`` or ``pseudo_gradient`` (FedAvg's).
        drop_stragglers: as FedAvg.
        server_optimizer: the global model's server step (default: plain averaging).
    """
    require(lam >= 0, "algorithm.lam", ">= 0", lam)
    require(isinstance(personal_epochs, int) and personal_epochs >= 1, "algorithm.personal_epochs", "an integer >= 1",
            personal_epochs)
    base = fedavg(upload=upload, drop_stragglers=drop_stragglers, server_optimizer=server_optimizer)

    def local_passes(trainer, server: State, client: State):  # noqa: ANN001, ANN202
        w = server["params"]
        out = trainer.run(w)  # the global update: FedAvg's local training, FedAvg's batches

        def proximal(v: Tensor) -> Tensor:
            return 0.5 * lam * (v - w).pow(2).sum()

        mine = trainer.run(client.get("personal", w), epochs=personal_epochs, extra=proximal if lam > 0 else None,
                           purpose="personal")
        return out, {"personal": mine.params}

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        upload_, _ = base.client_upload(server, local, client)
        return upload_, {"personal": local.personal["personal"]}

    def personalize(server: State, client: State, trainer) -> Tensor:  # noqa: ANN001
        return client.get("personal", server["params"])

    return replace(base, name="ditto", client_upload=client_upload, local_passes=local_passes, personalize=personalize,
                   plain_clients=False, plain_average=False,
                   options={"lam": lam, "personal_epochs": personal_epochs, **base.options})
