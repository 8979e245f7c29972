"""The pieces every topology's round is made of: local work on the backend, uploads (with buffers),
the round's metrics row.

Buffers (BatchNorm statistics) travel next to the parameters: by default the server keeps their
sample-weighted mean under ``server["buffers"]``, broadcasts it and counts it both ways. With
``task.local_buffers`` (FedBN, Li et al. 2021) they stay in each client's state and never travel;
the global test-set evaluation then uses the round's sample-weighted mean of the clients' buffers
(a measurement only: it is neither sent nor kept).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

from omegaconf import DictConfig

import torch

from fedbench.aggregators import Combine
from fedbench.algorithms.base import LocalResult, State, Upload
from fedbench.attacks import poison_results
from fedbench.experiment import Experiment
from fedbench.client import run_client
from fedbench.comm import RoundComm
from fedbench.metrics import COLUMNS
from fedbench.params import weighted_mean
from fedbench.privacy import dp_combine, epsilon, fixed_size_epsilon, local_epsilon
from fedbench.sampling import clients_per_round, sample_clients
from fedbench.seeding import numpy_generator
from fedbench.workload import Workload, assign_work


def mean_buffers(results: Sequence[LocalResult]):  # -> Tensor | None
    """Sample-weighted mean of the clients' buffers (None for models without buffers)."""
    if not results or results[0].buffers is None:
        return None
    return weighted_mean([r.buffers for r in results], [r.num_samples for r in results])


def mean_logged(results: Sequence[LocalResult]) -> dict[str, float]:
    """Each ``self.log`` name's sample-weighted mean over the clients that logged it; a name that
    clashes with a built-in column is kept as ``task_<name>``."""
    names = dict.fromkeys(k for r in results for k in r.logged)
    out = {}
    for name in names:
        who = [r for r in results if name in r.logged]
        value = sum(r.logged[name] * r.num_samples for r in who) / sum(r.num_samples for r in who)
        out[f"task_{name}" if name in COLUMNS else name] = value
    return out


def dropped_out(clients: Sequence[int], dropout: float, seed: int, r: int) -> frozenset[int]:
    """The sampled clients that fail in round ``r`` (each with probability ``dropout``, keyed by
    (seed, round, client)): they receive the model and never report."""
    if dropout <= 0:
        return frozenset()
    return frozenset(c for c in clients if numpy_generator(seed, r, c, "dropout").random() < dropout)


def participants(exp: Experiment, cfg: DictConfig, r: int, client_states: dict[int, State],
                 server_of: Callable[[int], State]) -> tuple[list[int], Workload, list[int], dict[int, State]]:
    """Round ``r``'s sampled clients, their work, those whose work arrives (dropped stragglers miss the
    deadline and failed clients, ``dropout``, never report: both got the model), and those clients' states."""
    alg = exp.algorithm
    clients = sample_clients(cfg.num_clients, cfg.client_fraction, cfg.seed, r, exp.sampling)
    work = assign_work(clients, r, cfg.seed, cfg.local_epochs, cfg.local_epochs_max, cfg.straggler_fraction)
    failed = dropped_out(clients, exp.threat.dropout, cfg.seed, r)
    active = [c for c in clients if not (alg.drop_stragglers and c in work.stragglers) and c not in failed]
    states = {c: client_states[c] if c in client_states else alg.init_client(server_of(c)) for c in active}
    return clients, work, active, states


def local_work(exp: Experiment, work: Workload, r: int, clients: Sequence[int], start: Callable[[int], State],
               states: dict[int, State]) -> tuple[list[LocalResult], list[dict[str, Any]]]:
    """Run ``clients``' local work on the backend, each from the model ``start(c)`` (a server state,
    buffers included) with its client state; returns the results and per-rank timings."""

    def job(c: int) -> LocalResult:
        model = start(c)
        buffers = states[c].get("buffers", model.get("buffers")) if exp.local_buffers else model.get("buffers")
        return run_client(exp.task, exp.algorithm, exp.plan, exp.client_data[c], model, states[c], c, r,
                          work.epochs[c], buffers)

    if exp.backend.train_many is not None:  # backend=vectorized: the clients train at once
        results = exp.backend.train_many(exp, work.epochs, r, list(clients), start, states)
    else:
        results = exp.backend.map(job, list(clients))
    attack = exp.threat.attack
    if attack is not None and attack.poison is not None:
        results = poison_results(attack, exp.threat.byzantine, results, start, r, exp.algorithm.work == "gradient")
    return results, [dict(t) for t in exp.backend.rank_times]


CHANNEL_KEYS = ("e:", "h:", "c:", "dp:")  # a client's error-feedback residuals, compressor state, DP-SGD steps


def make_uploads(exp: Experiment, server_of: Callable[[int], State], results: Sequence[LocalResult],
                 states: dict[int, State], client_states: dict[int, State], r: int = 0) -> list[Upload]:
    """Each result's upload to its server (buffers attached unless kept local), through the compressor
    when there is one; the clients' new states go into ``client_states``."""
    uploads = []
    for res in results:
        old = states[res.client]
        upload, state = exp.algorithm.client_upload(server_of(res.client), res, old)
        state = {**{k: v for k, v in old.items() if k.startswith(CHANNEL_KEYS)}, **state}
        if exp.plan.dp is not None:  # local DP-SGD: the released steps count toward the client's epsilon
            state["dp:steps"] = old.get("dp:steps", torch.zeros((), dtype=torch.int64)) + res.steps
        if res.buffers is not None and exp.local_buffers:
            state = {**state, "buffers": res.buffers}
        elif res.buffers is not None:
            upload = replace(upload, tensors={**upload.tensors, "buffers": res.buffers})
        if exp.channel is not None:
            upload, state = exp.channel.upload(upload, server_of(res.client), state, r)
        client_states[res.client] = state
        uploads.append(upload)
    return uploads


def compression_columns(raw_up: int, raw_down: int, comm: RoundComm, down: bool = False) -> dict[str, Any]:
    """``raw_bytes_up/down`` (the round's traffic as fp32) and ``compression_ratio`` = fp32 / wire bytes of
    the compressed direction(s): uploads, plus the broadcast when ``down``."""
    raw, wire = raw_up + (raw_down if down else 0), comm.bytes_up + (comm.bytes_down if down else 0)
    return {"raw_bytes_up": raw_up, "raw_bytes_down": raw_down, "compression_ratio": raw / wire if wire else float("nan")}


def combine_for(exp: Experiment, cfg: DictConfig, r: int, server: State | None = None) -> Combine:
    """Round ``r``'s rule for combining uploads: DP-FedAvg's clipped noisy sum with ``privacy=dp_fedavg``,
    else the ``aggregator`` (the weighted mean by default)."""
    privacy = exp.threat.privacy
    if privacy is not None and privacy.kind == "dp_fedavg":
        like = None if server is None else server["params"]
        return dp_combine(privacy, clients_per_round(cfg.num_clients, cfg.client_fraction), r, like)
    return exp.threat.aggregator.combine


def releases_when_empty(exp: Experiment) -> bool:
    """Whether a round with no uploads still takes a server step: DP-FedAvg releases its noise every round, so the
    output does not reveal that the cohort was empty (see :mod:`fedbench.privacy`)."""
    privacy = exp.threat.privacy
    return privacy is not None and privacy.kind == "dp_fedavg"


def server_step(exp: Experiment, server: State, uploads: Sequence[Upload], buffers,
                combine: Combine | None = None) -> tuple[State, dict[str, Any]]:
    """The algorithm's server update (through ``combine`` for algorithms that average their uploads),
    and the averaged buffers unless they are kept local."""
    if combine is not None and exp.algorithm.averages_uploads:
        server, extra = exp.algorithm.server_update(server, uploads, combine)
    else:
        server, extra = exp.algorithm.server_update(server, uploads)
    if buffers is not None and not exp.local_buffers:
        server = {**server, "buffers": buffers}
    return server, extra


def broadcast_keys(exp: Experiment, server: State) -> tuple[str, ...]:
    """The server-state keys each sampled client downloads (the buffers too unless kept local)."""
    return (*exp.algorithm.broadcast, "buffers") if "buffers" in server and not exp.local_buffers else exp.algorithm.broadcast


def eval_buffers(exp: Experiment, server: State, results: Sequence[LocalResult]):  # -> Tensor | None
    """Buffers for evaluating ``server``'s model: its own, or with local buffers the round's mean."""
    buffers = mean_buffers(results) if exp.local_buffers else None
    return buffers if buffers is not None else server.get("buffers")


def threat_columns(exp: Experiment, cfg: DictConfig, results: Sequence[LocalResult], r: int,
                   client_states: dict[int, State], aggregations: int = 1) -> dict[str, Any]:
    """``byzantine`` (attackers among the round's reports) with an attack; ``epsilon`` with privacy:
    DP-FedAvg's client-level epsilon after ``r * aggregations`` noisy aggregations, or local DP-SGD's
    largest sample-level epsilon over the clients' released steps."""
    threat, out = exp.threat, {}
    if threat.attack is not None:
        out["byzantine"] = sum(res.client in threat.byzantine for res in results)
    p = threat.privacy
    if p is not None and p.kind == "dp_fedavg":
        m = clients_per_round(cfg.num_clients, cfg.client_fraction)
        out["epsilon"] = epsilon(p.accountant, p.noise_multiplier, m / cfg.num_clients, r * aggregations, p.delta) \
            if exp.sampling == "poisson" else fixed_size_epsilon(p.noise_multiplier, cfg.num_clients, m, r * aggregations,
                                                                  p.delta)
    elif p is not None:
        released = [(len(exp.client_data[c][1]), int(s["dp:steps"])) for c, s in client_states.items() if "dp:steps" in s]
        out["epsilon"] = local_epsilon(p, released, cfg.batch_size)
    return out


def simulated_compute(exp: Experiment, res: LocalResult) -> float:
    """A client's simulated compute time: its local steps x ``client_speed.step_time_s`` (when set, a
    deterministic compute model) or its measured compute time, divided by its speed factor."""
    base = res.compute_s if exp.step_time_s is None else res.steps * exp.step_time_s
    return base / exp.speeds[res.client]


def row(r: int, results: Sequence[LocalResult], ranks: list[dict[str, Any]], comm: RoundComm, clients: int,
        acc: float, loss: float, times: dict[str, float], comm_sim: float, exp: Experiment) -> dict[str, Any]:
    """The standard metrics row of a round (``times``: t0, aggregate_s, eval_s)."""
    n = sum(res.num_samples for res in results)
    return {
        "round": r, "test_accuracy": acc, "test_loss": loss,
        "train_loss": sum(res.train_loss * res.num_samples for res in results) / n if n else math.nan,
        "clients": clients, "steps": sum(res.steps for res in results),
        "messages_up": comm.messages_up, "messages_down": comm.messages_down,
        "bytes_up": comm.bytes_up, "bytes_down": comm.bytes_down,
        "compute_s": sum(res.compute_s for res in results), "aggregate_s": times["aggregate_s"],
        "eval_s": times["eval_s"],
        "comm_s": max((t["comm_s"] for t in ranks), default=0.0), "idle_s": sum(t["wait_s"] for t in ranks),
        "comm_sim_s": comm_sim,
        "sim_round_s": max((simulated_compute(exp, res) for res in results), default=0.0) + comm_sim,
        "wall_s": time.perf_counter() - times["t0"], "ranks": ranks,
        **mean_logged(results),
    }
