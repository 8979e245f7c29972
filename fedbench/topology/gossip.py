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

Only server-free algorithms run here: FedAvg's local SGD and FedSGD (weights upload) with the
default server optimizer. SCAFFOLD, FedProx, FedDyn, FedADMM, FedNova and server optimizers need a
server (or a decentralized form fedbench does not implement) and are refused before any work.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from fedbench.algorithms.base import Algorithm
from fedbench.experiment import Experiment
from fedbench.comm import RoundComm
from fedbench.errors import ConfigError, require
from fedbench.local import evaluate
from fedbench.round import compression_columns, local_work, row
from fedbench.topology import Topology, TopologyState
from fedbench.topology.graphs import adjacency, connected, mixing, spectral_gap
from fedbench.workload import assign_work


def gossip(graph: str = "ring", weights: str = "metropolis", p: float = 0.5, seed: int = 0,
           eval_samples: int = 500, gamma: float = 1.0) -> Topology:
    """Decentralized local SGD with gossip averaging.

    Args:
        graph: ring | torus | complete | star | exponential | one_peer_exponential | erdos_renyi.
        weights: metropolis | uniform (maximum-degree).
        p: edge probability of ``erdos_renyi``.
        seed: the graph's seed (``erdos_renyi``; the config passes ``${seed}``).
        eval_samples: test samples each node is evaluated on (the average model uses the whole test set).
        gamma: CHOCO's consensus step size, used with a compressor.
    """
    require(0 < gamma <= 1, "topology.gamma", "in (0, 1]", gamma)
    require(isinstance(eval_samples, int) and eval_samples >= 1, "topology.eval_samples", "an integer >= 1", eval_samples)
    mixing(adjacency(graph, 2 if graph != "torus" else 4, p, seed), weights)  # validates graph, weights and p early

    def matrix(n: int, r: int) -> np.ndarray:
        return mixing(adjacency(graph, n, p, seed, r), weights)

    def check(cfg: DictConfig, algorithm: Algorithm) -> None:
        n = cfg.num_clients
        require(cfg.client_fraction == 1, "client_fraction", "1 with topology=gossip (every node trains and mixes "
                "every round)", cfg.client_fraction)
        server_free = algorithm.name in ("fedavg", "fedsgd") and algorithm.local_loss is None and \
            algorithm.work == "train" and algorithm.options.get("server_optimizer", "sgd") == "sgd" and \
            algorithm.options.get("lr", 1.0) == 1.0
        if not server_free:
            raise ConfigError(f"algorithm: topology=gossip runs decentralized local SGD (D-PSGD) and needs no server; "
                              f"algorithm must be fedavg or fedsgd with algorithm.upload=weights and the default "
                              f"server_optimizer (got {algorithm.name} {algorithm.options})")
        period = max(int(math.log2(n)), 1) if graph == "one_peer_exponential" else 1
        union = np.any([adjacency(graph, n, p, seed, r) for r in range(1, period + 1)], axis=0)
        if not connected(union):
            raise ConfigError(f"topology.graph: the {graph} graph on {n} nodes (p={p}, seed={seed}) is disconnected; "
                              "gossip cannot reach consensus (raise topology.p or change the seed)")

    def init(exp: Experiment, server: dict) -> TopologyState:
        n = len(exp.client_data)
        state: TopologyState = {"server": server, "client_states": {}, "nodes": server["params"].repeat(n, 1)}
        if "buffers" in server:
            state["node_buffers"] = server["buffers"].repeat(n, 1)
        return state

    def step(exp: Experiment, cfg: DictConfig, state: TopologyState, r: int) -> tuple[TopologyState, dict[str, Any]]:
        t0 = time.perf_counter()
        nodes, node_buffers = state["nodes"], state.get("node_buffers")
        n = len(nodes)
        clients = list(range(n))
        work = assign_work(clients, r, cfg.seed, cfg.local_epochs, cfg.local_epochs_max, cfg.straggler_fraction)
        client_states = state["client_states"]
        states = {c: client_states.get(c, {}) for c in clients}

        def start(c: int) -> dict:
            return {"params": nodes[c]} if node_buffers is None else {"params": nodes[c], "buffers": node_buffers[c]}

        results, ranks = local_work(exp, work, r, clients, start, states)
        t_agg = time.perf_counter()
        w = torch.from_numpy(matrix(n, r)).to(nodes.device)
        ends = torch.stack([res.params for res in results])
        out: TopologyState = {"client_states": client_states}
        wire = None
        if exp.channel is None:
            nodes = (w @ ends.double()).to(nodes.dtype)
        else:
            nodes, out["node_hat"], wire = _choco(exp, w, ends, state.get("node_hat", nodes), r, gamma)
        out["nodes"] = nodes
        if node_buffers is not None:
            ends = torch.stack([res.buffers for res in results])
            if exp.local_buffers:
                client_states.update({c: {"buffers": ends[c]} for c in clients})
                out["node_buffers"] = ends
            else:
                out["node_buffers"] = (w @ ends.double()).to(ends.dtype)
        mean = nodes.double().mean(0)
        server = {"params": mean.to(nodes.dtype)}
        if node_buffers is not None:
            server["buffers"] = out["node_buffers"].double().mean(0).to(node_buffers.dtype)
        out["server"] = server
        size = 4 * (nodes.shape[1] + (0 if node_buffers is None or exp.local_buffers else node_buffers.shape[1]))
        links = (w.clone().fill_diagonal_(0) > 0).sum(1)  # neighbours: off-diagonal entries
        edges, degree = int(links.sum()), int(links.max())
        sent = [size] * n if wire is None else [wire[i] + size - 4 * nodes.shape[1] for i in range(n)]
        t_eval = time.perf_counter()
        acc = loss = node_mean = node_min = math.nan
        if exp.backend.is_main and (r % cfg.eval_every == 0 or r == cfg.rounds):
            acc, loss = evaluate(exp.task, server["params"], exp.data.x_test, exp.data.y_test, buffers=server.get("buffers"))
            x, y = exp.data.x_test[:eval_samples], exp.data.y_test[:eval_samples]
            node_accs = [evaluate(exp.task, nodes[i], x, y, buffers=None if node_buffers is None else out["node_buffers"][i])[0]
                         for i in range(n)]
            node_mean, node_min = sum(node_accs) / n, min(node_accs)
        comm = RoundComm(edges, 0, int(sum(int(links[i]) * sent[i] for i in range(n))), 0)
        comm_sim = exp.network.latency_s + degree * max(sent) / exp.network.bandwidth_bytes_per_s
        times = {"t0": t0, "aggregate_s": t_eval - t_agg, "eval_s": time.perf_counter() - t_eval}
        metrics = row(r, results, ranks, comm, n, acc, loss, times, comm_sim, exp)
        metrics.update(consensus_distance=float(((nodes.double() - mean) ** 2).sum(1).mean()),
                       node_accuracy_mean=node_mean, node_accuracy_min=node_min)
        if wire is not None:
            metrics.update(compression_columns(edges * size, 0, comm))
        return out, metrics

    def summary(state: TopologyState) -> dict[str, Any]:
        n = len(state["nodes"])
        if graph == "one_peer_exponential":  # time-varying: the gap of one period's product
            prod = np.eye(n)
            for r in range(1, max(int(math.log2(n)), 1) + 1):
                prod = matrix(n, r) @ prod
            return {"spectral_gap": spectral_gap((prod + prod.T) / 2), "graph": graph}
        return {"spectral_gap": spectral_gap(matrix(n, 1)), "graph": graph}

    return Topology("gossip", init, step, check, summary,
                    options={"graph": graph, "weights": weights, "p": p, "eval_samples": eval_samples, "gamma": gamma})


def _choco(exp: Experiment, w: torch.Tensor, ends: torch.Tensor, hat: torch.Tensor, r: int, gamma: float):
    """CHOCO-gossip: compress ``y_i - x_hat_i``, update the public copies, step toward the neighbours'
    copies; returns (new models, new copies, each node's message bytes)."""
    sent, wire = [], []
    for i in range(len(ends)):
        q, size, _ = exp.channel.send(ends[i] - hat[i], "gossip", r, i, {}, "params")
        sent.append(q)
        wire.append(size)
    hat = hat + torch.stack(sent)
    nodes = ends + gamma * ((w @ hat.double()) - hat.double()).to(ends.dtype)
    return nodes, hat, wire
