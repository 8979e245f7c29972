"""Star: a server and its clients, one synchronous round at a time (McMahan et al. 2017, Algorithm 1).

Per round: sample m = max(floor(C N), 1) clients -> each trains from the broadcast model ->
uploads -> bytes -> the algorithm's server update -> evaluation. This is fedbench's original round.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from omegaconf import DictConfig

from fedbench.build import Experiment
from fedbench.client_eval import client_columns
from fedbench.comm import count_round, raw_bytes
from fedbench.local import evaluate
from fedbench.network import round_comm_time
from fedbench.round import (broadcast_keys, combine_for, compression_columns, eval_buffers, local_work, make_uploads,
                            mean_buffers, participants, row, server_step, threat_columns)
from fedbench.topology import Topology, TopologyState

log = logging.getLogger("fedbench")


def init(exp: Experiment, server: dict) -> TopologyState:
    return {"server": server, "client_states": {}}


def step(exp: Experiment, cfg: DictConfig, state: TopologyState, r: int) -> tuple[TopologyState, dict[str, Any]]:
    """One synchronous star round; returns (new state, metrics row)."""
    t0 = time.perf_counter()
    server, client_states = state["server"], state["client_states"]
    clients, work, active, states = participants(exp, cfg, r, client_states, lambda c: server)
    keys, down_each = broadcast_keys(exp, server), None
    sent = server  # the model the clients hold: the server's, or with down compression their decoded view
    if exp.channel is not None and exp.channel.down:
        sent, server, down_each = exp.channel.broadcast(server, keys, r)
    results, ranks = local_work(exp, work, r, active, lambda c: sent, states)
    t_agg = time.perf_counter()
    uploads = make_uploads(exp, lambda c: sent, results, states, client_states, r)
    comm = count_round(server, keys, len(clients), uploads, down_each)
    extra: dict[str, Any] = {}
    if uploads:
        server, extra = server_step(exp, server, uploads, mean_buffers(results), combine_for(exp, cfg, r))
    else:
        log.warning("round %d: none of the %d sampled clients reported (dropped out or dropped stragglers); the "
                    "model is unchanged", r, len(clients))
    t_eval = time.perf_counter()
    acc, loss, per_client = math.nan, math.nan, {}
    if exp.backend.is_main and (r % cfg.eval_every == 0 or r == cfg.rounds):
        acc, loss = evaluate(exp.task, server["params"], exp.data.x_test, exp.data.y_test,
                             buffers=eval_buffers(exp, server, results))
        per_client = client_columns(exp, server["params"], eval_buffers(exp, server, results))
    comm_sim = round_comm_time(exp.network, len(uploads), comm.bytes_down, comm.bytes_up)
    times = {"t0": t0, "aggregate_s": t_eval - t_agg, "eval_s": time.perf_counter() - t_eval}
    out = row(r, results, ranks, comm, len(clients), acc, loss, times, comm_sim, exp)
    out.update(threat_columns(exp, cfg, results, r, client_states))
    out.update(per_client)
    if exp.channel is not None:
        out.update(compression_columns(*raw_bytes(server, keys, len(clients), uploads), comm, exp.channel.down))
    return {"server": server, "client_states": client_states}, {**out, **extra}


def star() -> Topology:
    """The synchronous star (server + sampled clients)."""
    return Topology("star", init, step)
