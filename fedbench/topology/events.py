"""The event queue of asynchronous FL (:mod:`fedbench.topology.asynchronous`): dispatching clients on the simulated
clock, taking the next arrivals off the queue, and the staleness rules of FedAsync and FedBuff.

A client's job lasts its simulated compute time (local steps x ``step_time_s`` / its ``client_speed`` factor) plus
the transfer of the model both ways on the ``network`` block; the event order comes from that clock (ties by client
id), never from thread timing, so runs are deterministic and backend-independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fedbench.algorithms.base import LocalResult
from fedbench.comm import RoundComm
from fedbench.params import nbytes, normalized_weights, weighted_sum
from fedbench.round import RoundContext
from fedbench.seeding import torch_generator
from fedbench.server_optimizers import ServerOptimizer
from fedbench.stages import compact, local_work
from fedbench.workload import assign_work

STALENESS = ("constant", "polynomial", "hinge")
BUFFER_WEIGHTS = ("uniform", "samples")


@dataclass(frozen=True)
class Rule:
    """How arrivals are applied: ``mode`` (fedasync | fedbuff), arrivals per server step, FedAsync's ``alpha``, the
    staleness function ``s`` (with ``a``, ``b``), the cut-off, FedBuff's buffer weights and server optimizer, and the
    simulated seconds per local step."""

    mode: str
    per_step: int
    alpha: float
    staleness: str
    a: float
    b: int
    max_staleness: int | None
    weights: str
    optimizer: ServerOptimizer
    step_time_s: float


def staleness_weight(kind: str, tau: int, a: float = 0.5, b: int = 4) -> float:
    """``s(tau)`` of FedAsync (Xie et al. 2019, Section 5.2)."""
    if kind == "constant":
        return 1.0
    if kind == "polynomial":
        return (tau + 1) ** (-a)
    return 1.0 if tau <= b else 1.0 / (a * (tau - b) + 1.0)


def buffered_update(kept: list[tuple[dict, int]], staleness: str, a: float, b: int, weights: str) -> torch.Tensor:
    """FedBuff's buffered update: ``sum_i w_i s(tau_i) Delta_i`` with ``w_i = 1/K`` (``uniform``, Nguyen et al.
    2022) or ``n_i / sum_j n_j`` (``samples``), over the kept arrivals ``(event, tau)``."""
    raw = normalized_weights([e["num_samples"] for e, _ in kept] if weights == "samples" else [1.0] * len(kept))
    scaled = [w * staleness_weight(staleness, tau, a, b) for w, (_, tau) in zip(raw.tolist(), kept)]
    return weighted_sum([e["delta"] for e, _ in kept], scaled)


def dispatch(ctx: RoundContext, rule: Rule, count: int) -> None:
    """Start ``count`` idle clients from the current model: their local work now, their arrival on the clock later
    (queued); the downloads are counted in this round."""
    exp, cfg, state = ctx.exp, ctx.cfg, ctx.out
    busy = {e["client"] for e in state["queue"]}
    order = torch.randperm(cfg.num_clients, generator=torch_generator(cfg.seed, state["version"] + 1, "sample"))
    clients = sorted([c for c in order.tolist() if c not in busy][:count])
    r = state["version"] + 1
    work = assign_work(clients, r, cfg.seed, cfg.local_epochs, cfg.local_epochs_max, cfg.straggler_fraction)
    server = state["server"]
    results, ranks = local_work(exp, work, r, clients, lambda c: server, {c: {} for c in clients})
    model_bytes = nbytes({"params": server["params"]})
    transfer = 2 * (exp.network.latency_s + model_bytes / exp.network.bandwidth_bytes_per_s)
    for res in results:
        delta, wire = res.params - server["params"], model_bytes
        if exp.channel is not None:  # the update is compressed when the client sends it
            own = state["client_states"].get(res.client, {})
            delta, wire, channel = exp.channel.send(delta, "up", r, res.client, own.get("channel", {}), "delta")
            state["client_states"][res.client] = compact({**own, "channel": channel})
        state["queue"].append({"time": state["clock"] + res.steps * rule.step_time_s / exp.speeds[res.client] + transfer,
                               "client": res.client, "version": state["version"], "params": server["params"] + delta,
                               "delta": delta, "wire": wire, "num_samples": res.num_samples, "steps": res.steps,
                               "train_loss": res.train_loss, "compute_s": res.compute_s})
    ctx.ranks += ranks
    ctx.scratch["down_msgs"] = ctx.scratch.get("down_msgs", 0) + len(results)
    ctx.scratch["down_bytes"] = ctx.scratch.get("down_bytes", 0) + len(clients) * model_bytes
    arrived = ctx.scratch.get("arrived", [])
    ctx.comm = RoundComm(len(arrived), ctx.scratch["down_msgs"], sum(e["wire"] for e in arrived),
                         ctx.scratch["down_bytes"])
    ctx.raw_up, ctx.raw_down = len(arrived) * model_bytes, ctx.scratch["down_bytes"]


def arrivals(ctx: RoundContext, concurrency: int, rule: Rule) -> None:
    """The round's arrivals: the next ``per_step`` events of the queue (every slot filled first, on the first step)."""
    state = {**ctx.state, "queue": list(ctx.state["queue"]), "staleness_counts": dict(ctx.state["staleness_counts"])}
    ctx.out = state
    if not state["queue"]:  # the first step: fill every slot
        dispatch(ctx, rule, concurrency)
    state["queue"].sort(key=lambda e: (e["time"], e["client"]))
    arrived, state["queue"] = state["queue"][:rule.per_step], state["queue"][rule.per_step:]
    ctx.scratch["arrived"] = arrived
    ctx.results = ctx.all_results = [_as_result(e) for e in arrived]
    ctx.total_sampled = len(arrived)


def _as_result(event: dict) -> LocalResult:
    """What the round's metrics row reads of an arrival."""
    return LocalResult(event["client"], event["params"], event["num_samples"], event["steps"], event["train_loss"],
                       event["compute_s"], 0.0)
