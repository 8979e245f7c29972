"""The algorithm contract: a frozen record of pure functions (after fedjax's FederatedAlgorithm).

State goes in and comes out explicitly, so every backend runs the same math and a
checkpoint is just "save the states". States are ``dict[str, Tensor]``; the server state
always holds the global model under ``"params"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

from torch import Tensor

from fedbench.aggregators import Combine, mean_combine
from fedbench.errors import ConfigError, require
from fedbench.params import weighted_mean
from fedbench.server_optimizers import ServerOptimizer, sgd

State = dict[str, Tensor]


@dataclass(frozen=True)
class LocalResult:
    """What one client's local work produced.

    Attributes:
        client: client id.
        params: local model after training (``y_i``); the start model for ``work="gradient"``.
        num_samples: the client's dataset size ``n_i`` (the aggregation weight).
        steps: local optimizer steps taken (``tau_i``).
        train_loss: mean task loss over those steps (local loss terms excluded).
        compute_s: wall time of the local work.
        grad: gradient at the start model (for ``work="gradient"`` or ``start_gradient``).
        lr: the local learning rate used (its mean over the steps when a scheduler changes it).
        buffers: the local model's buffers after training (BatchNorm statistics), None without any.
        logged: the task's ``self.log`` values, each averaged over the client's steps.
        personal: what an algorithm's ``local_passes`` keep on the client (a personal model, a local head), for its
            ``client_upload`` to put into the client state.
        start_loss: the task loss of the start model on the client's whole training data, before any training (for
            algorithms that declare ``start_loss``: q-FFL's F_k(w^t)).
    """

    client: int
    params: Tensor
    num_samples: int
    steps: int
    train_loss: float
    compute_s: float
    lr: float
    grad: Tensor | None = None
    buffers: Tensor | None = None
    logged: dict[str, float] = field(default_factory=dict)
    personal: dict[str, Tensor] = field(default_factory=dict)
    start_loss: float | None = None


@dataclass(frozen=True)
class Upload:
    """One client's message to the server: ``tensors`` go on the wire, ``weight`` is its sample count;
    ``wire_bytes`` is set when a compressor encoded it (None: fp32 sizes)."""

    client: int
    tensors: dict[str, Tensor]
    weight: float
    wire_bytes: int | None = None


ClientUpload = Callable[[State, LocalResult, State], "tuple[Upload, State]"]
ServerUpdate = Callable[..., "tuple[State, dict[str, float]]"]  # (server, uploads[, combine]) -> (server, metrics)
LocalLoss = Callable[[Tensor, State, State], Tensor]
# (trainer, server, client state) -> (the outcome whose model is uploaded, what stays on the client); the trainer is
# fedbench.client.Trainer: ``run(start, epochs=, train=, extra=, purpose=)`` and ``head(layers)``
LocalPasses = Callable[[Any, State, State], "tuple[Any, dict[str, Tensor]]"]
Personalize = Callable[[State, State, Any], Tensor]  # (server, client state, trainer) -> the client's personal model


def no_client_state(server: State) -> State:
    """Initial per-client state of algorithms that keep none."""
    return {}


def params_only(params: Tensor) -> State:
    """Initial server state of algorithms that keep only the global model."""
    return {"params": params.clone()}


@dataclass(frozen=True)
class Algorithm:
    """A federated algorithm as pure functions.

    Attributes:
        name: short name used in logs and reports.
        init: ``params -> server state``.
        client_upload: ``(server, local result, client state) -> (upload, new client state)``.
        server_update: ``(server, uploads, combine=mean) -> (new server, metrics)``; ``combine`` is the run's
            aggregator (:mod:`fedbench.aggregators`), used by algorithms with ``averages_uploads``.
        local_loss: extra local loss term ``(flat params, server, client state) -> scalar`` or None.
        init_client: ``server -> initial client state`` (for never-seen clients).
        broadcast: server-state keys sent to every sampled client (counted as downlink bytes).
        work: ``"train"`` (local epochs of SGD) or ``"gradient"`` (one gradient, no step).
        max_local_steps: cap on local steps per round (FedSGD: 1), None for epochs only.
        start_gradient: also compute the full local gradient at the server model (``LocalResult.grad``).
        start_loss: also evaluate the task's loss on all local data at the server model (``LocalResult.start_loss``).
        drop_stragglers: discard stragglers' partial work instead of aggregating it.
        averages_uploads: the server update is a step on the (weighted) mean of one kind of upload, so a
            robust aggregator or DP-FedAvg's noisy mean can replace that mean.
        plain_clients: clients run the task's plain local training (no client state, no local loss term) and their
            result is their model: topologies that apply client models themselves (async) can run it.
        plain_average: the server update is the plain (weighted) average of the clients' models, with no server
            state: it has a server-free (decentralized) form (gossip).
        decentralized: the algorithm is a decentralized method: its node update (trackers, duals, push-sum weights,
            :class:`~fedbench.algorithms.decentralized.NodeUpdate`) runs on topologies that declare
            ``runs_node_updates`` (gossip), and only there.
        local_passes: replaces a client's one pass of local training by the algorithm's own passes (Ditto's global and
            personal updates, FedRep's head then body); None: the plain pass.
        personalize: the client's personal model for per-client evaluation (``personal_accuracy_*``), from the server
            state and its client state (a trainer for fine-tuning); None: the global model is everyone's.
        options: the factory's options, for logs.
    """

    name: str
    init: Callable[[Tensor], State]
    client_upload: ClientUpload
    server_update: ServerUpdate
    local_loss: LocalLoss | None = None
    init_client: Callable[[State], State] = no_client_state
    broadcast: tuple[str, ...] = ("params",)
    work: Literal["train", "gradient"] = "train"
    max_local_steps: int | None = None
    start_gradient: bool = False
    start_loss: bool = False
    drop_stragglers: bool = False
    averages_uploads: bool = False
    plain_clients: bool = False
    plain_average: bool = False
    decentralized: Any = None  # fedbench.algorithms.decentralized.NodeUpdate (imported there: no cycle)
    local_passes: LocalPasses | None = None
    personalize: Personalize | None = None
    options: dict = field(default_factory=dict)


def delta(start: Tensor, end: Tensor) -> Tensor:
    """Pseudo-gradient ``start - end``: the direction the server steps against."""
    return start - end


def mean_upload(uploads: Sequence[Upload], key: str, weighted: bool = True) -> Tensor:
    """Mean of the uploads' ``key`` tensors, weighted by sample counts unless ``weighted=False``."""
    weights = [u.weight for u in uploads] if weighted else [1.0] * len(uploads)
    return weighted_mean([u.tensors[key] for u in uploads], weights)


def combine_uploads(uploads: Sequence[Upload], key: str, combine: Combine, center: Tensor | None = None) -> Tensor:
    """The uploads' ``key`` tensors combined by the run's aggregator (weights = sample counts); ``center``
    is the point they are updates around (the global model for ``weights`` uploads, None for deltas)."""
    return combine([u.tensors[key] for u in uploads], [u.weight for u in uploads], center)


def init_with(opt: ServerOptimizer) -> Callable[[Tensor], State]:
    """Initial server state of algorithms that keep the global model and their optimizer's state."""
    return lambda params: {"params": params.clone(), **opt.init(params)}


def server_opt(server_optimizer: ServerOptimizer | None, server_lr: float | None = None) -> ServerOptimizer:
    """The server optimizer an algorithm factory was given: ``server_optimizer``, or plain SGD with
    ``server_lr`` (default 1, i.e. the plain average) for Python callers who pass only a rate."""
    if server_optimizer is not None and server_lr is not None:
        raise ConfigError("algorithm.server_lr and server_optimizer both given: set server_optimizer.lr instead")
    if server_optimizer is not None:
        return server_optimizer
    require(server_lr is None or server_lr > 0, "algorithm.server_lr", "> 0", server_lr)
    return sgd(1.0 if server_lr is None else server_lr)
