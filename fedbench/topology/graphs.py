"""Communication graphs and their mixing matrices for decentralized (gossip) training.

``adjacency(graph, n, ...)`` builds an undirected graph without self loops; ``mixing(adj, weights)``
turns it into a symmetric, doubly stochastic W:

* ``metropolis`` (Metropolis-Hastings weights; Xiao & Boyd, "Fast linear iterations for distributed
  averaging", 2004): ``W_ij = 1 / (1 + max(d_i, d_j))`` on edges, ``W_ii = 1 - sum_j W_ij``;
* ``uniform`` (maximum-degree weights): ``W_ij = 1 / (1 + d_max)`` on edges, the rest on the diagonal.

Graphs: ``ring``; ``torus`` (2-D, n = a x b with the most square a, b >= 2); ``complete``; ``star``
(node 0 is the hub); ``exponential`` (Ying, Yuan, Chen, Hu, Pan, Yin, "Exponential Graph is
Provably Efficient for Decentralized Deep Training", NeurIPS 2021; static, undirected: i ~ i +/- 2^k);
``one_peer_exponential`` (their time-varying one-peer graph in its symmetric hypercube form: in
round t node i pairs with i XOR 2^((t-1) mod log2 n); n a power of two; after log2 n rounds the
product of the W_t is exact averaging); ``erdos_renyi`` (each pair linked with probability ``p``,
seeded; must be connected).

Directed graphs, for push-sum (``algorithm=pushsum``): ``directed_ring`` (i -> i + 1); ``directed_exponential``
(Assran et al. 2019's one-peer time-varying exponential graph: in round t node i sends to i + 2^((t-1) mod m),
m = floor(log2(n - 1)) + 1); ``directed_erdos_renyi`` (each ordered pair i -> j with probability ``p``, seeded; must be
strongly connected). Their W is column stochastic (:func:`column_mixing`): a node keeps and sends equal shares,
``W_ij = 1 / (1 + outdeg_j)`` for j -> i and j = i; ``weights`` does not apply. The spectral gap ``1 - |lambda_2(W)|`` governs how fast gossip reaches
consensus: ``||X_t - X_bar||^2 <= (1 - gap)^(2t) ||X_0 - X_bar||^2`` (Boyd, Ghosh, Prabhakar,
Shah, "Randomized gossip algorithms", 2006).
"""

from __future__ import annotations

import math

import numpy as np

from fedbench.errors import ConfigError, require, require_choice
from fedbench.seeding import numpy_generator

DIRECTED = ("directed_ring", "directed_exponential", "directed_erdos_renyi")
GRAPHS = ("ring", "torus", "complete", "star", "exponential", "one_peer_exponential", "erdos_renyi", *DIRECTED)
WEIGHTS = ("metropolis", "uniform")


def _torus_shape(n: int) -> tuple[int, int]:
    a = max((d for d in range(2, math.isqrt(n) + 1) if n % d == 0), default=None)
    if a is None:
        raise ConfigError(f"topology.graph=torus needs num_clients = a x b with a, b >= 2 (got {n})")
    return a, n // a


def adjacency(graph: str, n: int, p: float = 0.5, seed: int = 0, round_: int = 1) -> np.ndarray:
    """The boolean adjacency matrix (symmetric, no self loops) of ``graph`` on ``n`` nodes; for a directed graph
    ``adj[j, i]`` says that j sends to i."""
    require_choice(graph, "topology.graph", GRAPHS)
    if graph in DIRECTED:
        return _directed(graph, n, p, seed, round_)
    adj = np.zeros((n, n), dtype=bool)
    idx = np.arange(n)
    if graph == "ring":
        adj[idx, (idx + 1) % n] = True
    elif graph == "torus":
        a, b = _torus_shape(n)
        row, col = idx // b, idx % b
        adj[idx, row * b + (col + 1) % b] = True
        adj[idx, ((row + 1) % a) * b + col] = True
    elif graph == "complete":
        adj[:] = True
    elif graph == "star":
        adj[0, 1:] = True
    elif graph == "exponential":
        for k in range(int(math.floor(math.log2(max(n - 1, 1)))) + 1):
            adj[idx, (idx + 2**k) % n] = True
    elif graph == "one_peer_exponential":
        require(n >= 2 and n & (n - 1) == 0, "num_clients", "a power of two with topology.graph=one_peer_exponential", n)
        adj[idx, idx ^ (1 << ((round_ - 1) % int(math.log2(n))))] = True
    else:
        require(0 < p <= 1, "topology.p", "in (0, 1]", p)
        adj = np.triu(numpy_generator(seed, "erdos_renyi").random((n, n)) < p, k=1)
    adj = adj | adj.T
    np.fill_diagonal(adj, False)
    return adj


def _directed(graph: str, n: int, p: float, seed: int, round_: int) -> np.ndarray:
    adj = np.zeros((n, n), dtype=bool)
    idx = np.arange(n)
    if graph == "directed_ring":
        adj[idx, (idx + 1) % n] = True
    elif graph == "directed_exponential":
        adj[idx, (idx + 2 ** ((round_ - 1) % period(graph, n))) % n] = True
    else:
        require(0 < p <= 1, "topology.p", "in (0, 1]", p)
        adj = numpy_generator(seed, "directed_erdos_renyi").random((n, n)) < p
    np.fill_diagonal(adj, False)
    return adj


def period(graph: str, n: int) -> int:
    """Rounds after which a time-varying graph repeats (1 for a static one)."""
    if graph == "one_peer_exponential":
        return max(int(math.log2(n)), 1)
    if graph == "directed_exponential":
        return int(math.floor(math.log2(max(n - 1, 1)))) + 1
    return 1


def graph_mixing(graph: str, n: int, weights: str = "metropolis", p: float = 0.5, seed: int = 0,
                 round_: int = 1) -> np.ndarray:
    """Round ``round_``'s mixing matrix of ``graph``: :func:`mixing` (undirected) or :func:`column_mixing`."""
    adj = adjacency(graph, n, p, seed, round_)
    return column_mixing(adj) if graph in DIRECTED else mixing(adj, weights)


def column_mixing(adj: np.ndarray) -> np.ndarray:
    """The column-stochastic W of a directed graph (``adj[j, i]``: j sends to i): every node keeps one share and
    sends one to each out-neighbour, ``W_ij = 1 / (1 + outdeg_j)``."""
    w = (adj.T | np.eye(len(adj), dtype=bool)) / (1.0 + adj.sum(1))[None, :]
    if not (np.allclose(w.sum(0), 1.0, atol=1e-12) and (w >= 0).all()):
        raise ValueError("mixing matrix is not column stochastic")
    return w


def properties(graph: str, n: int, weights: str = "metropolis", p: float = 0.5, seed: int = 0) -> set[str]:
    """What the graph's mixing matrices are in every round of a period: ``symmetric``, ``doubly_stochastic``,
    ``column_stochastic``, and ``static`` (the same every round), as :class:`~fedbench.algorithms.decentralized.
    NodeUpdate` ``mixing`` requirements name them."""
    ws = [graph_mixing(graph, n, weights, p, seed, r) for r in range(1, period(graph, n) + 1)]
    out = {"static"} if len(ws) == 1 else set()
    if all(np.allclose(w, w.T, atol=1e-12) for w in ws):
        out.add("symmetric")
    if all(np.allclose(w.sum(0), 1.0, atol=1e-12) for w in ws):
        out.add("column_stochastic")
        if all(np.allclose(w.sum(1), 1.0, atol=1e-12) for w in ws):
            out.add("doubly_stochastic")
    return out


def directed_gap(w: np.ndarray) -> float:
    """``1 - |lambda_2(W)|`` of any (e.g. column-stochastic) W: eigenvalue magnitudes, not ``eigvalsh``."""
    mags = np.sort(np.abs(np.linalg.eigvals(w)))[::-1]
    return float(1.0 - mags[1]) if len(mags) > 1 else 1.0


def connected(adj: np.ndarray) -> bool:
    """Whether the undirected graph is connected (breadth-first search from node 0)."""
    seen, frontier = {0}, [0]
    while frontier:
        nxt = [int(j) for i in frontier for j in np.flatnonzero(adj[i]) if int(j) not in seen]
        seen.update(nxt)
        frontier = list(dict.fromkeys(nxt))
    return len(seen) == len(adj)


def mixing(adj: np.ndarray, weights: str = "metropolis") -> np.ndarray:
    """The symmetric, doubly stochastic mixing matrix W of ``adj`` (float64)."""
    require_choice(weights, "topology.weights", WEIGHTS)
    deg = adj.sum(1)
    if weights == "metropolis":
        w = np.where(adj, 1.0 / (1.0 + np.maximum(deg[:, None], deg[None, :])), 0.0)
    else:
        w = np.where(adj, 1.0 / (1.0 + deg.max(initial=0)), 0.0)
    np.fill_diagonal(w, 1.0 - w.sum(1))
    check_mixing(w)
    return w


def check_mixing(w: np.ndarray, tol: float = 1e-12) -> None:
    """W must be symmetric, non-negative and doubly stochastic."""
    if not (np.allclose(w, w.T, atol=tol) and (w >= -tol).all() and np.allclose(w.sum(1), 1.0, atol=tol)):
        raise ValueError("mixing matrix is not symmetric, non-negative and doubly stochastic")


def spectral_gap(w: np.ndarray) -> float:
    """``1 - |lambda_2(W)|``: one minus the second largest eigenvalue magnitude of a symmetric W."""
    mags = np.sort(np.abs(np.linalg.eigvalsh(w)))[::-1]
    return float(1.0 - mags[1]) if len(mags) > 1 else 1.0
