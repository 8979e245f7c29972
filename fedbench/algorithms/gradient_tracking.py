"""Gradient tracking: decentralized SGD whose nodes track the network's average gradient.

Nedić, Olshevsky, Shi, "Achieving Geometric Convergence for Distributed Optimization over Time-Varying Graphs",
SIAM J. Optim. 2017 (DIGing); Pu, Nedić, "Distributed Stochastic Gradient Tracking Methods", Math. Program. 2021
(GT-DSGD, arXiv 2018). Each node keeps a tracker y_i of the average gradient, mixed like the model; in the
adapt-then-combine form of GT-DSGD::

    x_i <- sum_j W_ij (x_j - lr y_j)
    y_i <- sum_j W_ij y_j + g_i(x_i new) - g_i(x_i old),     y_i = g_i(x_i) at the start

Since W is doubly stochastic, sum_i y_i = sum_i g_i(x_i) in every round, so at a fixed point every node steps along
the *average* gradient and the nodes stop at the optimum of the average loss, where D-PSGD with a constant step
stops at a point biased by the nodes' heterogeneity.

fedbench runs it on gossip's local-work path by writing the tracker as a correction c_i = y_i - g_i(x_i), the local
loss term ``<c_i, w>`` (its gradient is c_i, as SCAFFOLD's): a node's local steps follow ``g_i + c_i``, it sends its
model y_i (trained) and its tracker d_i = (x_i - y_i) / (steps x lr) (its mean corrected direction), and sets
``c_i <- c_i + sum_j W_ij d_j - d_i``. With one full-batch step this is exactly the iteration above (d_i = y_i, the
tracker); with several local steps it is the correction form of K-GT (Liu, Koloskova, Jaggi, Lin, "Decentralized
Gradient Tracking with Local Steps", Optim. Methods Softw. 2024, arXiv 2301.01313). Every node sends two vectors per
neighbour and round: twice D-PSGD's bytes. With a compressor both go through CHOCO's compressed gossip (sum_i c_i
stays 0 there too). W must be doubly stochastic (time-varying allowed, as DIGing).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm, State
from fedbench.algorithms.decentralized import Mix, NodeState, NodeUpdate, decentralized_algorithm, step_directions


def gradient_tracking(max_local_steps: int | None = None) -> Algorithm:
    """Gradient tracking (DIGing / GT-DSGD; K-GT with local steps) on ``topology=gossip``.

    Args:
        max_local_steps: cap on local steps per round (1: one SGD step, the papers' setting); None: local epochs.
    """

    def init(x0: Tensor) -> NodeState:
        return {"correction": torch.zeros_like(x0)}

    def step(x: Tensor, y: Tensor, eta: Tensor, mix: Mix, state: NodeState) -> tuple[Tensor, NodeState]:
        tracker = step_directions(x, y, eta)  # = g_i(x_i) + c_i: the tracker with one full-batch step
        return mix("params", y), {"correction": state["correction"] + mix("tracker", tracker) - tracker}

    def correction(w: Tensor, start: State, client: State) -> Tensor:
        return torch.dot(start["correction"], w)

    node = NodeUpdate(init, step, local_keys=("correction",), mixing=("doubly_stochastic",))
    return decentralized_algorithm("gradient_tracking", node, {"max_local_steps": max_local_steps}, correction,
                                   max_local_steps)
