"""Topologies: who trains, who talks to whom, and how uploads are combined, one round at a time.

A topology is a record of pure functions, like an :class:`~fedbench.algorithms.base.Algorithm`:

* ``init(exp, server) -> state``: the topology's state from the algorithm's initial server state;
* ``step(exp, cfg, state, round) -> (state, row)``: one round of communication (the backend still
  runs the client jobs, so every topology runs on every backend with the same numbers);
* ``check(cfg, algorithm) -> None``: refuse, before any data is loaded, what the topology cannot run;
* ``summary(state) -> dict``: what goes into ``summary.json`` (e.g. a spectral gap).

The state is a dict of tensors, lists and numbers that the checkpoint stores as is. It always holds
``server`` (the state whose ``params`` is the model the run reports: the global model, the cloud
model, or the nodes' average) and ``client_states``; a topology adds what it needs (every gossip
node's model, the edge servers, an event queue and clock).
"""

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
class Topology:
    """One round of communication as pure functions (see the module docstring)."""

    name: str
    init: Callable[[Any, dict], TopologyState]
    step: Callable[[Any, DictConfig, TopologyState, int], "tuple[TopologyState, dict[str, Any]]"]
    check: Callable[[DictConfig, Any], None] = _no_check
    summary: Callable[[TopologyState], dict[str, Any]] = _no_summary
    options: dict = field(default_factory=dict)
