"""The record of a decentralized method: what each node keeps besides its model and how a round updates it.

Gossip (:mod:`fedbench.topology.gossip`) runs every node's local work (the same path as D-PSGD: E local epochs of
the task's SGD from the node's model, or one step with ``max_local_steps``), then calls the method's ``step`` on the
stacked rows (one per node) with a ``mix(name, rows)`` function that returns ``W @ rows`` for the round's mixing
matrix W: exactly, or through CHOCO's compressed gossip when a compressor is set (one set of public copies per
exchanged quantity ``name``). The topology counts every call of ``mix`` as traffic (one message per directed edge
per round, carrying all the quantities a node exchanges), so a method that exchanges a tracker besides the model
pays for it in ``bytes_up``.

With one local step of full-batch gradient descent, ``y_i = x_i - lr * (grad f_i(x_i) + <local term>)``, and each
method's ``step`` is its paper's iteration exactly (tests/test_decentralized.py drives them on a least-squares
problem); with more local steps they are the local-update variants their docstrings describe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from fedbench.algorithms.base import Algorithm, LocalResult, State, Upload, params_only
from fedbench.errors import require

Mix = Callable[[str, Tensor], Tensor]  # (exchanged quantity, rows) -> W @ rows (exact or compressed)
NodeState = dict[str, Tensor]  # stacked per-node tensors (rows = nodes)
MIXING = ("symmetric", "static", "doubly_stochastic", "column_stochastic")


@dataclass(frozen=True)
class NodeUpdate:
    """A decentralized method as pure functions on stacked rows (one row per node).

    Attributes:
        init: ``x0 (n, d) -> node state`` (the rows each node keeps: trackers, duals, push-sum weights).
        step: ``(x, y, eta, mix, state) -> (new x, new state)``: ``x`` the models the nodes trained from, ``y`` the
            trained models, ``eta`` each node's local steps x learning rate (float64, shape (n,)), ``mix`` the
            round's mixing (see the module docstring).
        local_keys: node-state keys each node's local work sees in its start state (read by the algorithm's
            ``local_loss``: gradient tracking's correction).
        mixing: what the method needs of the mixing matrices (each checked by the topology on the run's graph):
            ``symmetric``, ``static`` (one W for every round), ``doubly_stochastic``, ``column_stochastic``.
        compresses: its exchanges may go through CHOCO's compressed gossip (``compressor``).
    """

    init: Callable[[Tensor], NodeState]
    step: Callable[[Tensor, Tensor, Tensor, Mix, NodeState], "tuple[Tensor, NodeState]"]
    local_keys: tuple[str, ...] = ()
    mixing: tuple[str, ...] = ("doubly_stochastic",)
    compresses: bool = True


def exact_mix(w: Tensor) -> Mix:
    """``mix`` without compression: ``W @ rows`` in float64, returned in the rows' dtype (as gossip mixes)."""
    return lambda name, rows: (w @ rows.double()).to(rows.dtype)


def _plain_upload(server: State, local: LocalResult, client: State) -> tuple[Upload, State]:
    return Upload(local.client, {"weights": local.params}, local.num_samples), client


def decentralized_algorithm(name: str, node: NodeUpdate, options: dict, local_loss=None,  # noqa: ANN001
                            max_local_steps: int | None = None) -> Algorithm:
    """The :class:`Algorithm` record of a decentralized method: its node update and local work, no server step (a
    topology without ``runs_node_updates`` refuses it before any work); ``max_local_steps`` is checked here for all."""
    require(max_local_steps is None or (isinstance(max_local_steps, int) and max_local_steps >= 1),
            "algorithm.max_local_steps", "null (local epochs) or an integer >= 1", max_local_steps)

    def no_server(server: State, uploads: Sequence[Upload], *args) -> tuple[State, dict[str, float]]:  # noqa: ANN002
        raise RuntimeError(f"algorithm {name} is decentralized: it has no server update (run it on topology=gossip)")

    return Algorithm(name, params_only, _plain_upload, no_server, local_loss=local_loss, max_local_steps=max_local_steps,
                     plain_clients=local_loss is None, decentralized=node, options=options)


def step_directions(x: Tensor, y: Tensor, eta: Tensor) -> Tensor:
    """Each node's mean local direction ``(x_i - y_i) / eta_i`` (its gradient with one step; 0 for a node that
    took no step)."""
    scale = torch.where(eta > 0, 1.0 / eta.clamp_min(1e-300), torch.zeros_like(eta))
    return ((x.double() - y.double()) * scale[:, None]).to(x.dtype)
