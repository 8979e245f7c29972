"""Star: a server and its clients, one synchronous round at a time (McMahan et al. 2017, Algorithm 1).

Per round: sample m = max(floor(C N), 1) clients (or Poisson cohorts) -> each trains from the broadcast model ->
uploads -> bytes -> the algorithm's server update -> evaluation: exactly the default stages of the round pipeline
(:mod:`fedbench.round`). This is fedbench's original round.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from fedbench.experiment import Experiment
from fedbench.round import RoundHooks, run_round
from fedbench.topology.base import Topology, TopologyCapabilities, TopologyState

HOOKS = RoundHooks()  # every stage the pipeline's default
CAPABILITIES = TopologyCapabilities()  # a server that combines every upload of a round


def init(exp: Experiment, server: dict) -> TopologyState:
    return {"server": server, "client_states": {}}


def step(exp: Experiment, cfg: DictConfig, state: TopologyState, r: int) -> tuple[TopologyState, dict[str, Any]]:
    """One synchronous star round; returns (new state, metrics row)."""
    return run_round(exp, cfg, state, r, HOOKS)


def star() -> Topology:
    """The synchronous star (server + sampled clients)."""
    return Topology("star", init, step, capabilities=CAPABILITIES)
