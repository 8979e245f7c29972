"""Stochastic gradient push (SGP): decentralized SGD with push-sum gossip, for directed and time-varying graphs.

Assran, Loizou, Ballas, Rabbat, "Stochastic Gradient Push for Distributed Deep Learning", ICML 2019 (Algorithm 1),
on push-sum averaging (Kempe, Dobra, Gehrke, FOCS 2003). Each node keeps a numerator x_i and a scalar push-sum weight
w_i (1 at the start); its model is the de-biased z_i = x_i / w_i. Every round::

    x_i <- x_i - lr grad f_i(z_i)                            (local step, at the de-biased model)
    x_i <- sum_j P_ij x_j,   w_i <- sum_j P_ij w_j            (each node pushes P_ji x_i, P_ji w_i to its out-peers)
    z_i <- x_i / w_i

P only needs to be column stochastic (each sender splits what it has; nothing is lost), so a node needs to know only
its out-degree: directed graphs work. Since sum_i x_i and sum_i w_i are conserved and P^k -> pi 1^T, x_i -> pi_i sum x
and w_i -> pi_i n: the ratio z_i recovers the average, whatever the imbalance pi of the graph (the numerators alone
would not). fedbench's nodes train from z_i (gossip's local-work path: E local epochs, or one step with
``max_local_steps``) and add their local update z_i' - z_i to their numerator. The graph is typically
``topology.graph=directed_exponential`` (SGP's one-peer time-varying exponential graph: node i sends to
i + 2^(t mod log2 n), half of what it has) or ``directed_ring``; on such regular graphs P is also row stochastic and
the weights stay 1, while on ``directed_erdos_renyi`` (uneven out-degrees) they do not. Messages carry x_i and w_i
(one more scalar than D-PSGD's); compression is refused (CHOCO's guarantees assume a doubly stochastic W).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm
from fedbench.algorithms.decentralized import Mix, NodeState, NodeUpdate, decentralized_algorithm


def pushsum(max_local_steps: int | None = None) -> Algorithm:
    """Stochastic gradient push on ``topology=gossip`` (any graph; directed ones need it).

    Args:
        max_local_steps: cap on local steps per round (1: one SGD step, the paper's setting); None: local epochs.
    """

    def init(x0: Tensor) -> NodeState:
        return {"numerators": x0.clone(), "weights": torch.ones(len(x0), 1, dtype=torch.float64, device=x0.device)}

    def step(x: Tensor, y: Tensor, eta: Tensor, mix: Mix, state: NodeState) -> tuple[Tensor, NodeState]:
        numerators = mix("params", state["numerators"] + (y - x))
        weights = mix("weight", state["weights"])
        return (numerators.double() / weights).to(x.dtype), {"numerators": numerators, "weights": weights}

    node = NodeUpdate(init, step, mixing=("column_stochastic",), compresses=False)
    return decentralized_algorithm("pushsum", node, {"max_local_steps": max_local_steps}, None, max_local_steps)
