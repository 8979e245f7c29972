"""FedRep and FedPer: a shared body (representation) and a local head per client.

Collins, Hassani, Mokhtari, Shakkottai, "Exploiting Shared Representations for Personalized Federated Learning",
ICML 2021 (FedRep, Algorithm 1): each sampled client takes its own head h_k and the global body phi, trains the head
for ``head_epochs`` with the body frozen, then the body for the round's ``local_epochs`` with the head frozen, keeps
the head and uploads the body; the server averages the bodies (weighted by samples, as FedAvg; a robust aggregator
can replace the mean). Arivazhagan, Aggarwal, Singh, Choudhary, "Federated Learning with Personalization Layers",
2019 (FedPer, ``variant=fedper``): body and head train together for the round's epochs; only the body is averaged.

The head is the model's last ``head_layers`` modules with parameters (for the 2NN: its output layer), the tail of the
flat parameter vector. Heads live in the client state's ``algorithm`` field (checkpointed) and never travel; uploads
are the body only (``bytes_up`` counts it). The downlink counts the whole model: a client's first round needs a head
(the server's, never trained, is the initial one). A client's personal model is the global body with its own head;
a client never sampled has none and is evaluated with the server's (initial) head.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from fedbench.algorithms.base import (Algorithm, Combine, LocalResult, State, Upload, combine_uploads, mean_combine,
                                     params_only)
from fedbench.errors import require, require_choice


def _with_head(server: State, client: State) -> Tensor:
    """The global model with the client's own head (its tail) when it has one."""
    params = server["params"]
    if "head" not in client:
        return params
    return torch.cat([params[: params.numel() - client["head"].numel()], client["head"]])


def fedrep(head_layers: int = 1, head_epochs: int = 10, variant: str = "fedrep") -> Algorithm:
    """FedRep (and FedPer with ``variant=fedper``).

    Args:
        head_layers: the last modules with parameters that form the local head (>= 1, fewer than the model has).
        head_epochs: FedRep's local epochs of head training per round (the paper: 10); FedPer ignores it.
        variant: ``fedrep`` (head, then body) or ``fedper`` (both together).
    """
    require(isinstance(head_layers, int) and head_layers >= 1, "algorithm.head_layers", "an integer >= 1", head_layers)
    require(isinstance(head_epochs, int) and head_epochs >= 0, "algorithm.head_epochs", "an integer >= 0", head_epochs)
    require_choice(variant, "algorithm.variant", ["fedrep", "fedper"])

    def local_passes(trainer, server: State, client: State):  # noqa: ANN001, ANN202
        head = trainer.head(head_layers)
        start = _with_head(server, client)
        if variant == "fedper":
            out = trainer.run(start)
        else:
            if head_epochs > 0:
                start = trainer.run(start, epochs=head_epochs, train=head, purpose="head").params
            out = trainer.run(start, train=slice(0, head.start))
        return out, {"head": out.params[head]}

    def client_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
        body = local.params[: local.params.numel() - local.personal["head"].numel()]
        return Upload(local.client, {"body": body}, local.num_samples), {"head": local.personal["head"]}

    def server_update(server: State, uploads: Sequence[Upload], combine: Combine = mean_combine
                      ) -> tuple[State, dict[str, float]]:
        size = uploads[0].tensors["body"].numel()
        body = combine_uploads(uploads, "body", combine, server["params"][:size])
        return {**server, "params": torch.cat([body, server["params"][size:]])}, {}

    def personalize(server: State, client: State, trainer) -> Tensor:  # noqa: ANN001
        return _with_head(server, client)

    return Algorithm(variant, params_only, client_upload, server_update, averages_uploads=True,
                     local_passes=local_passes, personalize=personalize,
                     options={"head_layers": head_layers, "head_epochs": head_epochs, "variant": variant})
