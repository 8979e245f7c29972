"""Hierarchical federated learning: clients -> edge servers -> cloud (HierFAVG).

Liu, Zhang, Song, Letaief, "Client-Edge-Cloud Hierarchical Federated Learning", ICC 2020 (Algorithm 1). Clients are
assigned to ``num_edges`` edge servers once (a seeded, balanced split). A cloud round runs ``edge_rounds`` edge
rounds: each samples clients like the star does (``C``, keyed by the edge round), every sampled client trains from its
edge's model, and each edge applies the algorithm's server update to its own clients' uploads (an edge without
participants keeps its model). Then the cloud averages the edge models, weighted by the edges' data sizes, and sends
the result back to every edge. With one edge and one edge round it is the star, exactly. In the round pipeline
(:mod:`fedbench.round`) the edges are the servers and the edge rounds are sub-rounds.

Traffic per tier: ``messages_up/down`` and ``bytes_up/down`` are client <-> edge (all edge rounds),
``cloud_messages_up/down`` and ``cloud_bytes_up/down`` edge <-> cloud. Simulated time: per edge round the busiest
edge's star time on the ``network`` block, plus the cloud exchange on ``topology.cloud_latency_s`` /
``topology.cloud_bandwidth_gbps``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from omegaconf import DictConfig

from fedbench.algorithms.base import Algorithm
from fedbench.errors import require
from fedbench.experiment import Experiment
from fedbench.network import network, star_time
from fedbench.params import nbytes, weighted_mean
from fedbench.round import RoundContext, RoundHooks, run_round, warn_if_silent
from fedbench.sampling import clients_per_round
from fedbench.seeding import numpy_generator
from fedbench.topology.base import Topology, TopologyCapabilities, TopologyState

MODEL_KEYS = ("params", "buffers")
# a server per edge: no single aggregation of a round's uploads, no broadcast compression
CAPABILITIES = TopologyCapabilities(single_aggregation=False, compresses_broadcast=False)


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

    def init(exp: Experiment, server: dict) -> TopologyState:
        return {"server": server, "client_states": {}, "edges": [dict(server) for _ in range(num_edges)]}

    def servers(ctx: RoundContext) -> None:
        edge_of = assign_edges(ctx.cfg.num_clients, num_edges, seed)
        ctx.servers, ctx.server_of = dict(enumerate(ctx.state["edges"])), edge_of.__getitem__

    def busiest_edge(ctx: RoundContext) -> float:
        return max((star_time(ctx.exp.network, p.bytes_down, p.bytes_up) if p.messages_down else 0.0
                    for p in ctx.parts.values()), default=0.0)

    def cloud(ctx: RoundContext) -> None:
        """The cloud's data-size-weighted average of the edge models, sent back to every edge."""
        exp, edges = ctx.exp, [ctx.servers[e] for e in range(num_edges)]
        sizes = [0] * num_edges  # the edges' data sizes weight the cloud average
        for c, e in enumerate(assign_edges(ctx.cfg.num_clients, num_edges, seed)):
            sizes[e] += len(exp.client_data[c][1])
        model = {key: weighted_mean([edge[key] for edge in edges], sizes) for key in MODEL_KEYS
                 if key in edges[0] and not (key == "buffers" and exp.local_buffers)}
        warn_if_silent(ctx)
        ctx.out = {"server": {**ctx.state["server"], **model}, "client_states": ctx.state["client_states"],
                   "edges": [{**edge, **model} for edge in edges]}
        size = nbytes(model)
        ctx.comm_sim_s += star_time(cloud_net, num_edges * size, num_edges * size)
        ctx.columns.update(cloud_messages_up=num_edges, cloud_messages_down=num_edges, cloud_bytes_up=num_edges * size,
                           cloud_bytes_down=num_edges * size)

    hooks = RoundHooks(servers=servers, subrounds=lambda ctx: edge_rounds,
                       key=lambda ctx, k: (ctx.r - 1) * edge_rounds + k + 1,  # with edge_rounds=1 the star's round
                       comm_time=busiest_edge, finish=cloud)

    def step(exp: Experiment, cfg: DictConfig, state: TopologyState, r: int) -> tuple[TopologyState, dict[str, Any]]:
        return run_round(exp, cfg, state, r, hooks)

    return Topology("hierarchical", init, step, check, capabilities=CAPABILITIES,
                    uploads_per_aggregation=lambda cfg: max(clients_per_round(cfg.num_clients, cfg.client_fraction)
                                                            // num_edges, 1),
                    options={"num_edges": num_edges, "edge_rounds": edge_rounds})
