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
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from omegaconf import DictConfig

from fedbench.algorithms.base import Algorithm, LocalResult
from fedbench.experiment import Experiment
from fedbench.comm import RoundComm
from fedbench.errors import ConfigError, require, require_choice
from fedbench.local import evaluate
from fedbench.params import nbytes, normalized_weights, weighted_sum
from fedbench.round import compression_columns, local_work, row
from fedbench.seeding import torch_generator
from fedbench.server_optimizers import ServerOptimizer, apply, sgd
from fedbench.topology import Topology, TopologyState
from fedbench.workload import assign_work

STALENESS = ("constant", "polynomial", "hinge")
BUFFER_WEIGHTS = ("uniform", "samples")


def staleness_weight(kind: str, tau: int, a: float = 0.5, b: int = 4) -> float:
    """``s(tau)`` of FedAsync (Xie et al. 2019, Section 5.2)."""
    if kind == "constant":
        return 1.0
    if kind == "polynomial":
        return (tau + 1) ** (-a)
    return 1.0 if tau <= b else 1.0 / (a * (tau - b) + 1.0)


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
    per_step = 1 if mode == "fedasync" else buffer_size
    opt = server_optimizer or sgd(1.0)

    def check(cfg: DictConfig, algorithm: Algorithm) -> None:
        require(concurrency <= cfg.num_clients, "topology.concurrency", f"<= num_clients ({cfg.num_clients})", concurrency)
        require(cfg.get("client_sampling", "auto") != "poisson", "client_sampling", "fixed or auto with topology=async "
                "(clients are dispatched as slots free up, not sampled per round)", cfg.get("client_sampling"))
        if algorithm.name not in ("fedavg", "fedsgd") or algorithm.local_loss is not None or algorithm.work != "train":
            raise ConfigError(f"algorithm: topology=async applies local models as they arrive; algorithm must be fedavg, "
                              f"or fedsgd with algorithm.upload=weights (got {algorithm.name})")

    def init(exp: Experiment, server: dict) -> TopologyState:
        require(exp.channel is None or not exp.channel.down, "compressor.direction", "up with topology=async",
                "down/both")
        if "buffers" in server:
            raise ConfigError("model: topology=async does not carry buffers (BatchNorm statistics) yet; use a model "
                              "without them (e.g. model=mlp)")
        return {"server": server, "client_states": {}, "version": 0, "clock": 0.0,
                "queue": [], "staleness_counts": {}}

    def dispatch(exp: Experiment, cfg: DictConfig, state: TopologyState, count: int) -> tuple[list[dict], list, int]:
        """Start ``count`` idle clients from the current model; returns their events, timings and bytes sent."""
        busy = {e["client"] for e in state["queue"]}
        order = torch.randperm(cfg.num_clients, generator=torch_generator(cfg.seed, state["version"] + 1, "sample"))
        clients = sorted([c for c in order.tolist() if c not in busy][:count])
        r = state["version"] + 1
        work = assign_work(clients, r, cfg.seed, cfg.local_epochs, cfg.local_epochs_max, cfg.straggler_fraction)
        server = state["server"]
        results, ranks = local_work(exp, work, r, clients, lambda c: server, {c: {} for c in clients})
        model_bytes = nbytes({"params": server["params"]})
        transfer = 2 * (exp.network.latency_s + model_bytes / exp.network.bandwidth_bytes_per_s)
        events = []
        for res in results:
            delta, wire = res.params - server["params"], model_bytes
            if exp.channel is not None:  # the update is compressed when the client sends it
                delta, wire, state["client_states"][res.client] = exp.channel.send(
                    delta, "up", r, res.client, state["client_states"].get(res.client, {}), "delta")
            events.append({"time": state["clock"] + res.steps * step_time_s / exp.speeds[res.client] + transfer,
                           "client": res.client, "version": state["version"], "params": server["params"] + delta,
                           "delta": delta, "wire": wire, "num_samples": res.num_samples, "steps": res.steps,
                           "train_loss": res.train_loss, "compute_s": res.compute_s})
        return events, ranks, len(clients) * model_bytes

    def step(exp: Experiment, cfg: DictConfig, state: TopologyState, r: int) -> tuple[TopologyState, dict[str, Any]]:
        t0 = time.perf_counter()
        state = {**state, "queue": list(state["queue"]), "staleness_counts": dict(state["staleness_counts"])}
        ranks: list = []
        down_bytes = down_msgs = 0
        if not state["queue"]:  # the first step: fill every slot
            events, ranks, down_bytes = dispatch(exp, cfg, state, concurrency)
            state["queue"] += events
            down_msgs = len(events)
        state["queue"].sort(key=lambda e: (e["time"], e["client"]))
        arrived, state["queue"] = state["queue"][:per_step], state["queue"][per_step:]
        t_agg = time.perf_counter()
        clock_before, state["clock"] = state["clock"], arrived[-1]["time"]
        taus = [state["version"] - e["version"] for e in arrived]
        kept = [(e, tau) for e, tau in zip(arrived, taus) if max_staleness is None or tau <= max_staleness]
        server = state["server"]
        if kept and mode == "fedasync":
            e, tau = kept[0]
            mix = alpha * staleness_weight(staleness, tau, a, b)
            server = {**server, "params": (1 - mix) * server["params"] + mix * e["params"]}
        elif kept:
            server = apply(opt, server, -buffered_update(kept, staleness, a, b, buffer_weights))
        state["server"], state["version"] = server, state["version"] + 1
        for _, tau in kept:
            state["staleness_counts"][str(tau)] = state["staleness_counts"].get(str(tau), 0) + 1
        events, more_ranks, more_bytes = dispatch(exp, cfg, state, len(arrived))
        state["queue"] += events
        ranks, down_bytes, down_msgs = ranks + more_ranks, down_bytes + more_bytes, down_msgs + len(events)
        t_eval = time.perf_counter()
        acc, loss = math.nan, math.nan
        if exp.backend.is_main and (r % cfg.eval_every == 0 or r == cfg.rounds):
            acc, loss = evaluate(exp.task, server["params"], exp.data.x_test, exp.data.y_test)
        comm = RoundComm(len(arrived), down_msgs, sum(e["wire"] for e in arrived), down_bytes)
        times = {"t0": t0, "aggregate_s": t_eval - t_agg, "eval_s": time.perf_counter() - t_eval}
        results = [_as_result(e) for e in arrived]
        metrics = row(r, results, ranks, comm, len(arrived), acc, loss, times, 0.0, exp)
        metrics.update(sim_round_s=state["clock"] - clock_before, sim_time_s=state["clock"],
                       staleness=sum(t for _, t in kept) / len(kept) if kept else math.nan,
                       dropped_stale=len(arrived) - len(kept))
        if exp.channel is not None:
            metrics.update(compression_columns(len(arrived) * nbytes({"p": server["params"]}), down_bytes, comm))
        return state, metrics

    def summary(state: TopologyState) -> dict[str, Any]:
        return {"staleness_histogram": dict(sorted(state["staleness_counts"].items(), key=lambda kv: int(kv[0]))),
                "sim_time_s": state["clock"]}

    return Topology("async", init, step, check, summary,
                    options={"mode": mode, "concurrency": concurrency, "buffer_size": buffer_size, "alpha": alpha,
                             "staleness": staleness, "max_staleness": max_staleness, "step_time_s": step_time_s,
                             "buffer_weights": buffer_weights})


def buffered_update(kept: list[tuple[dict, int]], staleness: str, a: float, b: int, weights: str) -> torch.Tensor:
    """FedBuff's buffered update: ``sum_i w_i s(tau_i) Delta_i`` with ``w_i = 1/K`` (``uniform``, Nguyen et al.
    2022) or ``n_i / sum_j n_j`` (``samples``), over the kept arrivals ``(event, tau)``."""
    raw = normalized_weights([e["num_samples"] for e, _ in kept] if weights == "samples" else [1.0] * len(kept))
    scaled = [w * staleness_weight(staleness, tau, a, b) for w, (_, tau) in zip(raw.tolist(), kept)]
    return weighted_sum([e["delta"] for e, _ in kept], scaled)


def _as_result(event: dict) -> LocalResult:
    """What the round's metrics row reads of an arrival."""
    return LocalResult(event["client"], event["params"], event["num_samples"], event["steps"], event["train_loss"],
                       event["compute_s"], 0.0)
