"""EXTRA: an exact first-order algorithm for decentralized consensus optimization.

Shi, Ling, Wu, Yin, "EXTRA: An Exact First-Order Algorithm for Decentralized Consensus Optimization", SIAM J.
Optim. 2015. With W~ = (I + W) / 2::

    x^1     = W x^0 - lr grad f(x^0)
    x^{k+2} = (I + W) x^{k+1} - W~ x^k - lr (grad f(x^{k+1}) - grad f(x^k))

Summed over k (the paper's eq. (3.5)) this is ``x^{k+1} = W x^k - lr grad f(x^k) - u^k`` with the accumulated
correction ``u^{k+1} = u^k + (x^k - W x^k) / 2``, u^0 = 0, which is how fedbench runs it: every node trains from its
own x_i (gossip's local-work path), sends x_i to its neighbours, and sets
``x_i <- sum_j W_ij x_j + (y_i - x_i) - u_i`` and ``u_i <- u_i + (x_i - sum_j W_ij x_j) / 2``. With one full-batch
step y_i - x_i = -lr grad f_i(x_i): EXTRA exactly. The correction cancels D-PSGD's bias, so with a constant step the
nodes reach the optimum of the average loss (sum_i u_i stays 0). With several local steps y_i - x_i is the local
update and the fixed point is where the nodes' local updates cancel (exact only for one step). The nodes exchange
their models only (D-PSGD's bytes); with a compressor through CHOCO's compressed gossip. EXTRA's analysis needs a
symmetric, doubly stochastic W that stays the same every round: other graphs are refused.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm
from fedbench.algorithms.decentralized import Mix, NodeState, NodeUpdate, decentralized_algorithm


def extra(max_local_steps: int | None = None) -> Algorithm:
    """EXTRA on ``topology=gossip``.

    Args:
        max_local_steps: cap on local steps per round (1: one SGD step, the paper's setting); None: local epochs.
    """

    def init(x0: Tensor) -> NodeState:
        return {"dual": torch.zeros_like(x0)}

    def step(x: Tensor, y: Tensor, eta: Tensor, mix: Mix, state: NodeState) -> tuple[Tensor, NodeState]:
        wx = mix("params", x)
        return wx + (y - x) - state["dual"], {"dual": state["dual"] + 0.5 * (x - wx)}

    node = NodeUpdate(init, step, mixing=("symmetric", "static", "doubly_stochastic"))
    return decentralized_algorithm("extra", node, {"max_local_steps": max_local_steps}, None, max_local_steps)
