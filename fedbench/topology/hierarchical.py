"""Hierarchical federated learning: clients -> edge servers -> cloud (HierFAVG).

Liu, Zhang, Song, Letaief, "Client-Edge-Cloud Hierarchical Federated Learning", ICC 2020
(Algorithm 1). Clients are assigned to ``num_edges`` edge servers once (a seeded, balanced split).
A cloud round runs ``edge_rounds`` edge rounds: each samples clients like the star does (``C``, keyed
by the edge round), every sampled client trains from its edge's model, and each edge applies the
algorithm's server update to its own clients' uploads (an edge without participants keeps its
model). Then the cloud averages the edge models, weighted by the edges' data sizes, and sends the
result back to every edge. With one edge and one edge round it is the star, exactly.

Traffic per tier: ``messages_up/down`` and ``bytes_up/down`` are client <-> edge (all edge rounds),
``cloud_messages_up/down`` and ``cloud_bytes_up/down`` edge <-> cloud. Simulated time: per edge
round the busiest edge's star time on the ``network`` block, plus the cloud exchange on
``topology.cloud_latency_s`` / ``topology.cloud_bandwidth_gbps``.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any

import numpy as np
from omegaconf import DictConfig

from fedbench.algorithms.base import Algorithm
from fedbench.build import Experiment
from fedbench.client_eval import client_columns
from fedbench.comm import RoundComm, count_round, raw_bytes
from fedbench.errors import require
from fedbench.local import evaluate
from fedbench.network import network, star_time
from fedbench.params import nbytes, weighted_mean
from fedbench.round import (broadcast_keys, combine_for, compression_columns, eval_buffers, local_work, make_uploads,
                            mean_buffers, participants, row, server_step, threat_columns)
from fedbench.seeding import numpy_generator
from fedbench.topology import Topology, TopologyState

MODEL_KEYS = ("params", "buffers")
log = logging.getLogger("fedbench")


@functools.lru_cache(maxsize=8)
def assign_edges(num_clients: int, num_edges: int, seed: int) -> tuple[int, ...]:
    """Each client's edge: a seeded permutation cut into ``num_edges`` near-equal groups."""
    order = numpy_generator(seed, "edges").permutation(num_clients)
    edge_of = [0] * num_clients
    for e, group in enumerate(np.array_split(order, num_edges)):
        for c in group:
            edge_of[int(c)] = e
    return tuple(edge_of)


def hierarchical(num_edges: int = 2, edge_rounds: int = 2, seed: int = 0, cloud_latency_s: float = 0.02,
                 cloud_bandwidth_gbps: float = 10.0) -> Topology:
    """HierFAVG.

    Args:
        num_edges: edge servers (each needs at least one client).
        edge_rounds: edge aggregations per cloud aggregation (kappa_2 in the paper).
        seed: the client -> edge assignment's seed (the config passes ``${seed}``).
        cloud_latency_s, cloud_bandwidth_gbps: the edge <-> cloud links of the network model.
    """
    require(isinstance(num_edges, int) and num_edges >= 1, "topology.num_edges", "an integer >= 1", num_edges)
    require(isinstance(edge_rounds, int) and edge_rounds >= 1, "topology.edge_rounds", "an integer >= 1", edge_rounds)
    cloud_net = network(cloud_latency_s, cloud_bandwidth_gbps)

    def check(cfg: DictConfig, algorithm: Algorithm) -> None:
        require(num_edges <= cfg.num_clients, "topology.num_edges", f"<= num_clients ({cfg.num_clients})", num_edges)
        direction = cfg.compressor.get("direction", "up")
        require(direction == "up", "compressor.direction", "up with topology=hierarchical (client -> edge uploads are "
                "compressed; down is implemented for the star)", direction)

    def init(exp: Experiment, server: dict) -> TopologyState:
        return {"server": server, "client_states": {}, "edges": [dict(server) for _ in range(num_edges)]}

    def step(exp: Experiment, cfg: DictConfig, state: TopologyState, r: int) -> tuple[TopologyState, dict[str, Any]]:
        t0 = time.perf_counter()
        edges, client_states = list(state["edges"]), state["client_states"]
        edge_of = assign_edges(cfg.num_clients, num_edges, seed)
        all_results, all_ranks, extra = [], [], {}
        comm = RoundComm(0, 0, 0, 0)
        sampled, agg_s, sim_s, raw_up = 0, 0.0, 0.0, 0
        for k in range(edge_rounds):
            t = (r - 1) * edge_rounds + k + 1  # the edge round's key: with edge_rounds=1 the star's round
            clients, work, active, states = participants(exp, cfg, t, client_states, lambda c: edges[edge_of[c]])
            results, ranks = local_work(exp, work, t, active, lambda c: edges[edge_of[c]], states)
            t_agg = time.perf_counter()
            busiest = 0.0
            for e in range(num_edges):
                mine = [res for res in results if edge_of[res.client] == e]
                uploads = make_uploads(exp, lambda c: edges[e], mine, states, client_states, t)
                raw_up += raw_bytes(edges[e], (), 0, uploads)[0]
                part = count_round(edges[e], broadcast_keys(exp, edges[e]), sum(edge_of[c] == e for c in clients), uploads)
                comm = comm + part
                busiest = max(busiest, star_time(exp.network, part.bytes_down, part.bytes_up) if part.messages_down else 0.0)
                if uploads:
                    edges[e], extra = server_step(exp, edges[e], uploads, mean_buffers(mine), combine_for(exp, cfg, t))
            agg_s += time.perf_counter() - t_agg
            sim_s += busiest
            all_results += results
            all_ranks += ranks
            sampled += len(clients)
        sizes = [0] * num_edges  # the edges' data sizes weight the cloud average
        for c, e in enumerate(edge_of):
            sizes[e] += len(exp.client_data[c][1])
        cloud = {key: weighted_mean([edge[key] for edge in edges], sizes) for key in MODEL_KEYS
                 if key in edges[0] and not (key == "buffers" and exp.local_buffers)}
        edges = [{**edge, **cloud} for edge in edges]
        server = {**state["server"], **cloud}
        model_bytes = nbytes(cloud)
        t_eval = time.perf_counter()
        acc, loss, per_client = math.nan, math.nan, {}
        if exp.backend.is_main and (r % cfg.eval_every == 0 or r == cfg.rounds):
            acc, loss = evaluate(exp.task, server["params"], exp.data.x_test, exp.data.y_test,
                                 buffers=eval_buffers(exp, server, all_results))
            per_client = client_columns(exp, server["params"], eval_buffers(exp, server, all_results))
        cloud_sim = star_time(cloud_net, num_edges * model_bytes, num_edges * model_bytes)
        times = {"t0": t0, "aggregate_s": agg_s, "eval_s": time.perf_counter() - t_eval}
        metrics = row(r, all_results, all_ranks, comm, sampled, acc, loss, times, sim_s + cloud_sim, exp)
        metrics.update(threat_columns(exp, cfg, all_results, r, client_states, edge_rounds))
        metrics.update(per_client)
        if not all_results:
            log.warning("round %d: none of the %d sampled clients reported (dropped out or dropped stragglers); the "
                        "edge models are unchanged", r, sampled)
        if exp.channel is not None:
            metrics.update(compression_columns(raw_up, 0, comm))
        metrics.update(cloud_messages_up=num_edges, cloud_messages_down=num_edges, cloud_bytes_up=num_edges * model_bytes,
                       cloud_bytes_down=num_edges * model_bytes, **extra)
        return {"server": server, "client_states": client_states, "edges": edges}, metrics

    return Topology("hierarchical", init, step, check,
                    options={"num_edges": num_edges, "edge_rounds": edge_rounds})
