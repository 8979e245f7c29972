"""Gossip: decentralized local SGD over a communication graph (no server).

Every client is a node with its own model x_i. Each round every node trains locally from its own
model (E local epochs, or one step with FedSGD: D-PSGD, Lian et al., "Can Decentralized Algorithms
Outperform Centralized Algorithms?", NeurIPS 2017) and then mixes with its neighbours,
``x_i <- sum_j W_ij y_j`` (local SGD + gossip as in Koloskova, Loizou, Boreiri, Jaggi, Stich, "A
Unified Theory of Decentralized SGD with Changing Topology and Local Updates", ICML 2020). All nodes
start from the same model; W comes from :mod:`fedbench.topology.graphs`. Buffers (BatchNorm
statistics) are mixed the same way unless ``task.local_buffers`` keeps them on each node.

Reported: ``test_accuracy`` of the average model x_bar (``server`` in the state), ``node_accuracy_mean``
and ``node_accuracy_min`` over the nodes on the first ``topology.eval_samples`` test samples (so
evaluation does not dominate), ``consensus_distance`` = mean_i ||x_i - x_bar||^2 after mixing. Every
node sends its model to each neighbour: one message per directed edge, counted once in
``messages_up`` / ``bytes_up`` (peer-to-peer traffic has no "down"). Simulated time per round: a
node sends to its neighbours one after another, so latency + max degree x model bytes / bandwidth.

With a ``compressor``, nodes exchange compressed models as in CHOCO-SGD (Koloskova, Stich, Jaggi,
"Decentralized Stochastic Optimization and Gossip Algorithms with Compressed Communication", ICML
2019): every node keeps public copies x_hat (all starting at the common initial model), sends
``q_i = C(y_i - x_hat_i)`` to its neighbours, everyone sets ``x_hat_i += q_i``, and
``x_i = y_i + gamma sum_j W_ij (x_hat_j - x_hat_i)`` (``topology.gamma``, the consensus step). Without
compression gamma = 1 gives exactly ``W y``; the uncompressed path is used then.

Only server-free algorithms run here: those that declare ``plain_clients`` and ``plain_average`` (FedAvg's local
SGD and FedSGD with ``upload=weights``, with the default server optimizer: D-PSGD), and decentralized methods that
declare a node update (``Algorithm.decentralized``; the topology declares ``runs_node_updates``): gradient tracking,
EXTRA and push-sum (:mod:`fedbench.topology.gossip_mix` runs them; their per-node state, trackers, duals or push-sum
numerators and weights, lives in the topology state under ``node_state`` and is checkpointed with it). Each method
declares what it needs of W (symmetric, static, doubly or column stochastic), checked on the run's graph; D-PSGD
needs a doubly stochastic W. Directed graphs (``directed_ring``, ``directed_exponential``, ``directed_erdos_renyi``)
have column-stochastic W. SCAFFOLD, FedProx, FedDyn, FedADMM, FedNova and server optimizers need a server (or a
decentralized form fedbench does not implement) and are refused before any work. In the round pipeline
(:mod:`fedbench.round`) every node is sampled, trains from its own model, and mixing takes the place of uploads and
the server step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from omegaconf import DictConfig

from fedbench.algorithms.base import Algorithm
from fedbench.compress.channel import compressor_of
from fedbench.errors import ConfigError, require
from fedbench.experiment import Experiment
from fedbench.local import evaluate
from fedbench.round import RoundContext, RoundHooks, run_round
from fedbench.topology.base import Topology, TopologyCapabilities, TopologyState
from fedbench.topology.gossip_mix import mix_nodes
from fedbench.topology.graphs import (DIRECTED, adjacency, connected, directed_gap, graph_mixing, period, properties,
                                      spectral_gap)
from fedbench.workload import assign_work

# no server: every node trains and mixes every round (a plain average, or the algorithm's declared node update)
CAPABILITIES = TopologyCapabilities(server_aggregation=False, single_aggregation=False, samples_cohorts=False,
                                    full_participation=True, compresses_broadcast=False, needs_plain_clients=True,
                                    needs_plain_average=True, evaluates_clients=False, runs_node_updates=True)


def gossip(graph: str = "ring", weights: str = "metropolis", p: float = 0.5, seed: int = 0,
           eval_samples: int = 500, gamma: float = 1.0) -> Topology:
    """Decentralized local SGD with gossip averaging.

    Args:
        graph: ring | torus | complete | star | exponential | one_peer_exponential | erdos_renyi, or a directed
            graph (column-stochastic W, for push-sum): directed_ring | directed_exponential | directed_erdos_renyi.
        weights: metropolis | uniform (maximum-degree).
        p: edge probability of ``erdos_renyi`` and ``directed_erdos_renyi``.
        seed: the graph's seed (``erdos_renyi``; the config passes ``${seed}``).
        eval_samples: test samples each node is evaluated on (the average model uses the whole test set).
        gamma: CHOCO's consensus step size, used with a compressor.
    """
    require(0 < gamma <= 1, "topology.gamma", "in (0, 1]", gamma)
    require(isinstance(eval_samples, int) and eval_samples >= 1, "topology.eval_samples", "an integer >= 1", eval_samples)
    graph_mixing(graph, 2 if graph != "torus" else 4, weights, p, seed)  # validates graph, weights and p early

    def matrix(n: int, r: int) -> np.ndarray:
        return graph_mixing(graph, n, weights, p, seed, r)

    def check(cfg: DictConfig, algorithm: Algorithm) -> None:
        n = cfg.num_clients
        union = np.any([adjacency(graph, n, p, seed, r) for r in range(1, period(graph, n) + 1)], axis=0)
        if not (connected(union) and connected(union.T)):
            raise ConfigError(f"topology.graph: the {graph} graph on {n} nodes (p={p}, seed={seed}) is disconnected; "
                              "gossip cannot reach consensus (raise topology.p or change the seed)")
        _check_method(cfg, algorithm, graph, properties(graph, n, weights, p, seed))

    def init(exp: Experiment, server: dict) -> TopologyState:
        n = len(exp.client_data)
        state: TopologyState = {"server": server, "client_states": {}, "nodes": server["params"].repeat(n, 1)}
        if "buffers" in server:
            state["node_buffers"] = server["buffers"].repeat(n, 1)
        if exp.algorithm.decentralized is not None:
            state["node_state"] = exp.algorithm.decentralized.init(state["nodes"])
        return state

    hooks = RoundHooks(servers=_no_servers, sample=_every_node, upload=_no_uploads,
                       combine=lambda ctx: mix_nodes(ctx, matrix, gamma), comm_time=_send_time, finish=_no_finish,
                       evaluate=lambda ctx: _evaluate(ctx, eval_samples))

    def step(exp: Experiment, cfg: DictConfig, state: TopologyState, r: int) -> tuple[TopologyState, dict[str, Any]]:
        return run_round(exp, cfg, state, r, hooks)

    def summary(state: TopologyState) -> dict[str, Any]:
        n = len(state["nodes"])
        prod = np.eye(n)
        for r in range(1, period(graph, n) + 1):  # time-varying: the gap of one period's product
            prod = matrix(n, r) @ prod
        if graph in DIRECTED:
            return {"spectral_gap": directed_gap(prod), "graph": graph}
        if graph == "one_peer_exponential":
            return {"spectral_gap": spectral_gap((prod + prod.T) / 2), "graph": graph}
        return {"spectral_gap": spectral_gap(matrix(n, 1)), "graph": graph}

    return Topology("gossip", init, step, check, summary, capabilities=CAPABILITIES,
                    does="runs decentralized local SGD (D-PSGD) and needs no server",
                    options={"graph": graph, "weights": weights, "p": p, "eval_samples": eval_samples, "gamma": gamma})


def _check_method(cfg: DictConfig, algorithm: Algorithm, graph: str, has: set[str]) -> None:
    """What the algorithm's node update (D-PSGD's plain gossip without one) needs of W, and of the compressor."""
    node = algorithm.decentralized
    needs = ("doubly_stochastic",) if node is None else node.mixing
    missing = [need for need in needs if need not in has]
    if missing:
        raise ConfigError(f"topology.graph: algorithm {algorithm.name} needs a {' and '.join(missing)} mixing matrix, "
                          f"which topology.graph={graph} does not give (its W is {', '.join(sorted(has))})")
    if node is not None and not node.compresses and not compressor_of(cfg.compressor).identity:
        raise ConfigError(f"compressor: algorithm {algorithm.name} does not declare compresses (its exchanges are not "
                          "sent through CHOCO's compressed gossip); use compressor=none")


def _no_servers(ctx: RoundContext) -> None:
    ctx.servers = {}


def _no_uploads(ctx: RoundContext) -> None:
    return None


def _no_finish(ctx: RoundContext) -> None:
    return None


def _every_node(ctx: RoundContext) -> None:
    """Every node takes part, training from its own model (and buffers), with its own client state."""
    nodes, node_buffers = ctx.state["nodes"], ctx.state.get("node_buffers")
    cfg, client_states = ctx.cfg, ctx.state["client_states"]
    ctx.sampled = ctx.active = list(range(len(nodes)))
    ctx.total_sampled = len(nodes)
    ctx.work = assign_work(ctx.active, ctx.r, cfg.seed, cfg.local_epochs, cfg.local_epochs_max, cfg.straggler_fraction)
    ctx.states = {c: client_states.get(c, {}) for c in ctx.active}
    ctx.sent = {c: {"params": nodes[c]} if node_buffers is None else {"params": nodes[c], "buffers": node_buffers[c]}
                for c in ctx.active}
    node = ctx.exp.algorithm.decentralized
    for key in () if node is None else node.local_keys:  # e.g. gradient tracking's correction, for its local term
        for c in ctx.active:
            ctx.sent[c][key] = ctx.state["node_state"][key][c]
    ctx.server_of = lambda c: c  # each node is its own start


def _send_time(ctx: RoundContext) -> float:
    """A node sends to its neighbours one after another: latency + max degree x model bytes / bandwidth."""
    degree, largest = ctx.scratch["degree_sent"]
    return ctx.exp.network.latency_s + degree * largest / ctx.exp.network.bandwidth_bytes_per_s


def _evaluate(ctx: RoundContext, eval_samples: int) -> None:
    """The average model on the test set, and every node on its first ``eval_samples`` test samples."""
    exp, cfg, out = ctx.exp, ctx.cfg, ctx.out
    node_mean = node_min = math.nan
    if exp.backend.is_main and (ctx.r % cfg.eval_every == 0 or ctx.r == cfg.rounds):
        server = out["server"]
        ctx.accuracy = evaluate(exp.task, server["params"], exp.data.x_test, exp.data.y_test,
                                buffers=server.get("buffers"))
        x, y = exp.data.x_test[:eval_samples], exp.data.y_test[:eval_samples]
        buffers = out.get("node_buffers")
        node_accs = [evaluate(exp.task, out["nodes"][i], x, y, buffers=None if buffers is None else buffers[i])[0]
                     for i in range(len(out["nodes"]))]
        node_mean, node_min = sum(node_accs) / len(node_accs), min(node_accs)
    ctx.columns.update(node_accuracy_mean=node_mean, node_accuracy_min=node_min)
