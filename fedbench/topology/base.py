"""The topology record and its declared capabilities (see :mod:`fedbench.topology`)."""


from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from omegaconf import DictConfig

TopologyState = dict[str, Any]


def _no_check(cfg: DictConfig, algorithm: Any) -> None:
    return None


def _no_summary(state: TopologyState) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class TopologyCapabilities:
    """What a topology declares it does; :mod:`fedbench.compat` refuses combinations by these.

    Attributes:
        server_aggregation: a server combines the uploads (robust aggregators, dropout and local DP need one).
        single_aggregation: one server combines all of a round's uploads (DP-FedAvg's accountant assumes it).
        samples_cohorts: clients are drawn per round with ``client_sampling`` (fixed-size or Poisson).
        full_participation: every client takes part in every round (``client_fraction`` must be 1).
        carries_buffers: models with buffers (BatchNorm statistics) are supported.
        compresses_uploads: what clients send can go through the ``compressor`` (uploads, gossip messages).
        compresses_broadcast: there is a server broadcast to compress (``compressor.direction`` down or both).
        needs_plain_clients: the algorithm's clients must run plain local training (no client state, no local loss
            term): the topology applies their models itself.
        needs_plain_average: the algorithm's server update must be a plain average of the clients' models (there is
            no server to keep optimizer state, control variates or duals).
        evaluates_clients: per-client evaluation (``eval.per_client``) of the global model is supported.
        runs_node_updates: the topology runs an algorithm's declared node update (``Algorithm.decentralized``:
            gradient tracking, EXTRA, push-sum) in place of a server step; such algorithms run only there, and
            ``needs_plain_clients`` / ``needs_plain_average`` admit them.
    """

    server_aggregation: bool = True
    single_aggregation: bool = True
    samples_cohorts: bool = True
    full_participation: bool = False
    carries_buffers: bool = True
    compresses_uploads: bool = True
    compresses_broadcast: bool = True
    needs_plain_clients: bool = False
    needs_plain_average: bool = False
    evaluates_clients: bool = True
    runs_node_updates: bool = False


def clients_per_aggregation(cfg: DictConfig) -> int:
    """Uploads one server aggregation expects by default: the round's cohort m."""
    from fedbench.sampling import clients_per_round

    return clients_per_round(cfg.num_clients, cfg.client_fraction)


@dataclass(frozen=True)
class Topology:
    """One round of communication as pure functions (see the module docstring).

    Attributes:
        uploads_per_aggregation: ``cfg -> uploads one server aggregation expects`` (robust aggregators' minimum).
        does: what the topology does with the clients' models, in a few words, for messages that refuse a combination
            ("runs decentralized local SGD (D-PSGD) and needs no server").
    """

    name: str
    init: Callable[[Any, dict], TopologyState]
    step: Callable[[Any, DictConfig, TopologyState, int], "tuple[TopologyState, dict[str, Any]]"]
    check: Callable[[DictConfig, Any], None] = _no_check
    summary: Callable[[TopologyState], dict[str, Any]] = _no_summary
    options: dict = field(default_factory=dict)
    capabilities: TopologyCapabilities = TopologyCapabilities()
    uploads_per_aggregation: Callable[[DictConfig], int] = clients_per_aggregation
    does: str = "combines its clients' uploads on a server"
