"""One synchronous star round: sample -> local work (backend) -> uploads -> bytes -> server update
-> evaluate -> the metrics row.

Buffers (BatchNorm statistics) travel next to the parameters: by default the server keeps their
sample-weighted mean under ``server["buffers"]``, broadcasts it and counts it both ways. With
``task.local_buffers`` (FedBN, Li et al. 2021) they stay in each client's state and never travel;
the global test-set evaluation then uses the round's sample-weighted mean of the clients' buffers
(a measurement only: it is neither sent nor kept).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import Any, Sequence

from omegaconf import DictConfig

from fedbench.algorithms.base import LocalResult, State, Upload
from fedbench.build import Experiment
from fedbench.client import run_client
from fedbench.comm import count_round
from fedbench.local import evaluate
from fedbench.metrics import COLUMNS
from fedbench.network import round_comm_time
from fedbench.params import weighted_mean
from fedbench.sampling import sample_clients
from fedbench.workload import assign_work

log = logging.getLogger("fedbench")


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


def run_round(exp: Experiment, cfg: DictConfig, server: State, client_states: dict[int, State], r: int):
    """One synchronous round; returns (metrics row, new server state)."""
    t0 = time.perf_counter()
    alg, local_buffers = exp.algorithm, exp.local_buffers
    clients = sample_clients(cfg.num_clients, cfg.client_fraction, cfg.seed, r)
    work = assign_work(clients, r, cfg.seed, cfg.local_epochs, cfg.local_epochs_max, cfg.straggler_fraction)
    # dropped stragglers miss the deadline: they got the model but their work never arrives
    active = [c for c in clients if not (alg.drop_stragglers and c in work.stragglers)]
    states = {c: client_states[c] if c in client_states else alg.init_client(server) for c in active}

    def job(c: int) -> LocalResult:
        buffers = states[c].get("buffers", server.get("buffers")) if local_buffers else server.get("buffers")
        return run_client(exp.task, alg, exp.plan, exp.client_data[c], server, states[c], c, r, work.epochs[c], buffers)

    results = exp.backend.map(job, active)
    ranks = [dict(t) for t in exp.backend.rank_times]
    t_agg = time.perf_counter()
    uploads: list[Upload] = []
    for res in results:
        upload, state = alg.client_upload(server, res, states[res.client])
        if res.buffers is not None and local_buffers:
            state = {**state, "buffers": res.buffers}
        elif res.buffers is not None:
            upload = replace(upload, tensors={**upload.tensors, "buffers": res.buffers})
        client_states[res.client] = state
        uploads.append(upload)
    broadcast = (*alg.broadcast, "buffers") if "buffers" in server and not local_buffers else alg.broadcast
    comm = count_round(server, broadcast, len(clients), uploads)
    extra: dict[str, Any] = {}
    buffers = mean_buffers(results)
    if uploads:
        server, extra = alg.server_update(server, uploads)
        if buffers is not None and not local_buffers:
            server = {**server, "buffers": buffers}
    else:
        log.warning("round %d: every sampled client was a dropped straggler; the model is unchanged", r)
    t_eval = time.perf_counter()
    acc, loss = math.nan, math.nan
    if exp.backend.is_main and (r % cfg.eval_every == 0 or r == cfg.rounds):
        eval_buffers = buffers if local_buffers and buffers is not None else server.get("buffers")
        acc, loss = evaluate(exp.task, server["params"], exp.data.x_test, exp.data.y_test, buffers=eval_buffers)
    n = sum(res.num_samples for res in results)
    comm_sim = round_comm_time(exp.network, len(uploads), comm.bytes_down, comm.bytes_up)
    row = {
        "round": r, "test_accuracy": acc, "test_loss": loss,
        "train_loss": sum(res.train_loss * res.num_samples for res in results) / n if n else math.nan,
        "clients": len(clients), "steps": sum(res.steps for res in results),
        "messages_up": comm.messages_up, "messages_down": comm.messages_down,
        "bytes_up": comm.bytes_up, "bytes_down": comm.bytes_down,
        "compute_s": sum(res.compute_s for res in results), "aggregate_s": t_eval - t_agg,
        "eval_s": time.perf_counter() - t_eval,
        "comm_s": max(t["comm_s"] for t in ranks), "idle_s": sum(t["wait_s"] for t in ranks),
        "comm_sim_s": comm_sim,
        "sim_round_s": max((res.compute_s / exp.speeds[res.client] for res in results), default=0.0) + comm_sim,
        "wall_s": time.perf_counter() - t0, "ranks": ranks,
        **extra, **mean_logged(results),
    }
    return row, server
