"""FedAvg + local fine-tuning: the personalization baseline.

The global model is FedAvg's (McMahan et al. 2017), unchanged; a client's personal model is that global model
fine-tuned on the client's own training data for ``epochs`` local epochs of the task's SGD, at evaluation time (so
every evaluated client, sampled or not, gets one, from the current global model). This is the baseline the
personalization papers compare against (e.g. Wang, Mathews, Kiddon, Eichner, Beaufays, Ramage, "Federated
Evaluation of On-device Personalization", 2019; Ditto and FedRep report it as "FedAvg + FT"). Fine-tuning costs
``epochs`` of local training per evaluated client and evaluated round (bounded by ``eval.max_clients``); it is not
counted in the round's compute or traffic (it stays on the device).
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from fedbench.algorithms.base import Algorithm, State
from fedbench.algorithms.fedavg import fedavg
from fedbench.errors import require
from fedbench.server_optimizers import ServerOptimizer


def finetune(epochs: int = 1, upload: str = "weights", drop_stragglers: bool = True,
             server_optimizer: ServerOptimizer | None = None) -> Algorithm:
    """FedAvg whose clients fine-tune the global model for evaluation.

    Args:
        epochs: local epochs of fine-tuning (>= 1).
        upload, drop_stragglers, server_optimizer: FedAvg's.
    """
    require(isinstance(epochs, int) and epochs >= 1, "algorithm.epochs", "an integer >= 1", epochs)
    base = fedavg(upload=upload, drop_stragglers=drop_stragglers, server_optimizer=server_optimizer)

    def personalize(server: State, client: State, trainer) -> Tensor:  # noqa: ANN001
        return trainer.run(server["params"], epochs=epochs, purpose="finetune").params

    return replace(base, name="finetune", personalize=personalize, options={"epochs": epochs, **base.options})
