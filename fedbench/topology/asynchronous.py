"""Asynchronous federated learning on a simulated clock: FedAsync and FedBuff.

``concurrency`` clients are in flight at once. A client's job lasts its simulated compute time
(local steps x ``step_time_s`` / its ``client_speed`` factor) plus the transfer of the model both
ways on the ``network`` block; the event order is decided by that clock (ties by client id), never by
thread timing, so runs are deterministic and backend-independent. A client trains from the model
version it received; its staleness is ``tau`` = server steps since then.

* ``mode=fedasync`` (Xie, Koyejo, Gupta, "Asynchronous Federated Optimization", 2019): every arrival
  is one server step, ``x <- (1 - a) x + a y_i`` with ``a = alpha * s(tau)``, where ``s`` is
  ``constant`` (1), ``polynomial`` ((tau + 1)^-a) or ``hinge`` (1 if tau <= b else 1 / (a (tau - b) + 1)).
* ``mode=fedbuff`` (Nguyen, Malik, Zhan, Yousefpour, Rabbat, Malek, Huba, "Federated Learning with
  Buffered Asynchronous Aggregation", AISTATS 2022, Algorithm 1): arrivals are buffered, each update
  ``Delta_i = y_i - x_start(i)`` scaled by ``s(tau_i)`` as it arrives (the paper: ``1 / sqrt(1 + tau)``, i.e.
  ``staleness=polynomial`` with ``a=0.5``, the default); every ``buffer_size`` = K arrivals the server steps
  on ``(1/K) sum_i s(tau_i) Delta_i`` (``buffer_weights=uniform``, the paper's) with the
  ``server_optimizer`` (sgd lr 1 by default). ``buffer_weights=samples`` weights the buffer by sample
  counts instead; ``staleness=constant buffer_weights=samples`` is the rule fedbench used before
  (a sample-weighted mean with no staleness scaling), kept as an explicit option.

Updates staler than ``max_staleness`` are dropped (they were sent, so they count as traffic). After a
server step, idle clients are dispatched to refill the slots: the first idle ones in the seeded order
the star uses to sample round v + 1, so with ``buffer_size = concurrency = m``, equal speeds and
``buffer_weights=samples`` FedBuff is synchronous FedAvg. The first row's downloads include the initial
fill of all ``concurrency`` slots (so it counts ``concurrency + buffer_size`` messages down). A metrics row is one server step; ``sim_time_s`` is the clock, ``staleness``
the mean tau of the applied updates; ``summary.json`` gets the staleness histogram. An asynchronous
parameter server (one local step per job) is ``algorithm=fedsgd algorithm.upload=weights``.

In the round pipeline (:mod:`fedbench.round`) a server step is a round: its sample stage takes the arrivals off the
event queue (filling every slot first), and its combine stage applies them and dispatches the freed slots
(:mod:`fedbench.topology.events`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from omegaconf import DictConfig

from fedbench.algorithms.base import Algorithm
from fedbench.errors import require, require_choice
from fedbench.experiment import Experiment
from fedbench.round import RoundContext, RoundHooks, run_round
from fedbench.server_optimizers import ServerOptimizer, apply, sgd
from fedbench.topology.base import Topology, TopologyCapabilities, TopologyState
from fedbench.topology.events import BUFFER_WEIGHTS, STALENESS, Rule, arrivals, buffered_update, dispatch, \
    staleness_weight

__all__ = ["asynchronous", "buffered_update", "staleness_weight"]

# the topology applies the clients' models itself (FedAsync mixing, FedBuff's buffer): no aggregator, no dropout,
# no privacy accounting, no cohorts, no buffers, no broadcast to compress. FedBuff steps with the run's server
# optimizer (a FedOpt preset's too); FedAsync mixes models and has no server step, so it needs a plain average.
CAPABILITIES = TopologyCapabilities(server_aggregation=False, single_aggregation=False, samples_cohorts=False,
                                    carries_buffers=False, compresses_broadcast=False, needs_plain_clients=True,
                                    evaluates_clients=False)


def asynchronous(mode: str = "fedbuff", concurrency: int = 10, buffer_size: int = 5, alpha: float = 0.6,
                 staleness: str = "polynomial", a: float = 0.5, b: int = 4, max_staleness: int | None = None,
                 step_time_s: float = 0.01, server_optimizer: ServerOptimizer | None = None,
                 buffer_weights: str = "uniform") -> Topology:
    """FedAsync / FedBuff on a simulated clock (see the module docstring for every argument;
    ``server_optimizer`` is FedBuff's server step, the config passes ``${server_optimizer}``)."""
    require_choice(mode, "topology.mode", ("fedasync", "fedbuff"))
    require_choice(staleness, "topology.staleness", STALENESS)
    require_choice(buffer_weights, "topology.buffer_weights", BUFFER_WEIGHTS)
    require(isinstance(concurrency, int) and concurrency >= 1, "topology.concurrency", "an integer >= 1", concurrency)
    require(mode == "fedasync" or (isinstance(buffer_size, int) and 1 <= buffer_size <= concurrency),
            "topology.buffer_size", f"an integer in [1, concurrency ({concurrency})]", buffer_size)
    require(0 < alpha <= 1, "topology.alpha", "in (0, 1]", alpha)
    require(max_staleness is None or (isinstance(max_staleness, int) and max_staleness >= 0), "topology.max_staleness",
            "null or an integer >= 0", max_staleness)
    require(step_time_s > 0, "topology.step_time_s", "> 0", step_time_s)
    rule = Rule(mode, 1 if mode == "fedasync" else buffer_size, alpha, staleness, a, b, max_staleness, buffer_weights,
                server_optimizer or sgd(1.0), step_time_s)

    def check(cfg: DictConfig, algorithm: Algorithm) -> None:
        require(concurrency <= cfg.num_clients, "topology.concurrency", f"<= num_clients ({cfg.num_clients})", concurrency)

    def init(exp: Experiment, server: dict) -> TopologyState:
        return {"server": server, "client_states": {}, "version": 0, "clock": 0.0, "queue": [], "staleness_counts": {}}

    hooks = RoundHooks(servers=_no_servers, sample=lambda ctx: arrivals(ctx, concurrency, rule), train=_nothing,
                       upload=_nothing, combine=lambda ctx: _apply(ctx, rule), comm_time=lambda ctx: 0.0,
                       finish=_nothing)

    def step(exp: Experiment, cfg: DictConfig, state: TopologyState, r: int) -> tuple[TopologyState, dict[str, Any]]:
        return run_round(exp, cfg, state, r, hooks)

    def summary(state: TopologyState) -> dict[str, Any]:
        return {"staleness_histogram": dict(sorted(state["staleness_counts"].items(), key=lambda kv: int(kv[0]))),
                "sim_time_s": state["clock"]}

    capabilities = replace(CAPABILITIES, needs_plain_average=mode == "fedasync")
    does = ("mixes each arriving model into the global one (FedAsync) and has no server step" if mode == "fedasync"
            else "applies local models as they arrive (FedBuff, with the run's server_optimizer)")
    return Topology("async", init, step, check, summary, capabilities=capabilities, does=does,
                    options={"mode": mode, "concurrency": concurrency, "buffer_size": buffer_size, "alpha": alpha,
                             "staleness": staleness, "max_staleness": max_staleness, "step_time_s": step_time_s,
                             "buffer_weights": buffer_weights})


def _no_servers(ctx: RoundContext) -> None:
    ctx.servers = {}


def _nothing(ctx: RoundContext) -> None:
    return None


def _apply(ctx: RoundContext, rule: Rule) -> None:
    """One server step on the arrivals (FedAsync's staleness-weighted mixing, FedBuff's buffered update), then the
    freed slots dispatched from the new model."""
    state, arrived = ctx.out, ctx.scratch["arrived"]
    clock_before, state["clock"] = state["clock"], arrived[-1]["time"]
    taus = [state["version"] - e["version"] for e in arrived]
    kept = [(e, tau) for e, tau in zip(arrived, taus) if rule.max_staleness is None or tau <= rule.max_staleness]
    server = state["server"]
    if kept and rule.mode == "fedasync":
        e, tau = kept[0]
        mix = rule.alpha * staleness_weight(rule.staleness, tau, rule.a, rule.b)
        server = {**server, "params": (1 - mix) * server["params"] + mix * e["params"]}
    elif kept:
        server = apply(rule.optimizer, server, -buffered_update(kept, rule.staleness, rule.a, rule.b, rule.weights))
    state["server"], state["version"] = server, state["version"] + 1
    for _, tau in kept:
        state["staleness_counts"][str(tau)] = state["staleness_counts"].get(str(tau), 0) + 1
    dispatch(ctx, rule, len(arrived))
    ctx.columns.update(sim_round_s=state["clock"] - clock_before, sim_time_s=state["clock"],
                       staleness=sum(t for _, t in kept) / len(kept) if kept else float("nan"),
                       dropped_stale=len(arrived) - len(kept))
