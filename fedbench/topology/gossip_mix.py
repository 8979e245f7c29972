"""Gossip's combine stage: the nodes' trained models mixed over the round's graph, by D-PSGD's plain gossip or by
an algorithm's declared node update (:class:`fedbench.algorithms.decentralized.NodeUpdate`: gradient tracking,
EXTRA, push-sum), with the traffic and the consensus distance.

Every exchange goes through one :class:`Mixer`: ``W @ rows`` exactly, or CHOCO-gossip (Koloskova, Stich, Jaggi,
ICML 2019) with the run's compressor, with one set of public copies per exchanged quantity (``node_hat`` for the
models, ``node_hat_<name>`` for the others, kept in the topology state). A node's message to each out-neighbour
carries everything it exchanges in the round (and its buffers unless they stay local): one message per directed edge.
"""

from __future__ import annotations

from typing import Any

import torch

from fedbench.comm import RoundComm
from fedbench.experiment import Experiment
from fedbench.round import RoundContext
from fedbench.topology.base import TopologyState


class Mixer:
    """``mix(name, rows)`` for one round (see the module docstring); counts each node's bytes per neighbour."""

    def __init__(self, exp: Experiment, w: torch.Tensor, hats: dict[str, torch.Tensor], start: torch.Tensor, r: int,
                 gamma: float) -> None:
        self.exp, self.w, self.hats, self.start, self.r, self.gamma = exp, w, hats, start, r, gamma
        self.raw = 0  # bytes per node as fp32 (each exchanged row's size)
        self.wire = [0] * len(start)  # bytes per node on the wire

    def __call__(self, name: str, rows: torch.Tensor) -> torch.Tensor:
        size = rows.shape[1] * rows.element_size()
        self.raw += size
        if self.exp.channel is None:
            self.wire = [s + size for s in self.wire]
            return (self.w @ rows.double()).to(rows.dtype)
        key = "node_hat" if name == "params" else f"node_hat_{name}"
        hat = self.hats.get(key, self.start if name == "params" else torch.zeros_like(rows))
        new, self.hats[key], wire = choco(self.exp, self.w, rows, hat, self.r, self.gamma, name)
        self.wire = [s + b for s, b in zip(self.wire, wire)]
        return new


def mix_nodes(ctx: RoundContext, matrix: Any, gamma: float) -> None:
    """``x_i <- sum_j W_ij y_j`` (D-PSGD, CHOCO-gossip with a compressor) or the algorithm's node update, the nodes'
    average as the reported model, the traffic and the consensus distance."""
    exp, nodes, node_buffers = ctx.exp, ctx.state["nodes"], ctx.state.get("node_buffers")
    n, clients, client_states = len(nodes), ctx.active, ctx.state["client_states"]
    w = torch.from_numpy(matrix(n, ctx.r)).to(nodes.device)
    ends = torch.stack([res.params for res in ctx.results])
    method = exp.algorithm.decentralized
    mixer = Mixer(exp, w, {k: v for k, v in ctx.state.items() if k.startswith("node_hat")}, nodes, ctx.r, gamma)
    out: TopologyState = {"client_states": client_states}
    if method is None:
        new = mixer("params", ends)
    else:
        eta = torch.tensor([res.steps * res.lr for res in ctx.results], dtype=torch.float64, device=nodes.device)
        new, out["node_state"] = method.step(nodes, ends, eta, mixer, ctx.state["node_state"])
    out["nodes"] = new
    out.update(mixer.hats)
    if node_buffers is not None:
        bufs = torch.stack([res.buffers for res in ctx.results])
        if exp.local_buffers:
            client_states.update({c: {"buffers": bufs[c]} for c in clients})
            out["node_buffers"] = bufs
        else:  # an average of what each node receives (W's rows normalized: push-sum's W is only column stochastic)
            wb = w if method is None else w / w.sum(1, keepdim=True)
            out["node_buffers"] = (wb @ bufs.double()).to(bufs.dtype)
    mean = new.double().mean(0)
    out["server"] = {"params": mean.to(new.dtype)}
    if node_buffers is not None:
        out["server"]["buffers"] = out["node_buffers"].double().mean(0).to(node_buffers.dtype)
    _count(ctx, w, mixer, 0 if node_buffers is None or exp.local_buffers else 4 * node_buffers.shape[1])
    ctx.columns["consensus_distance"] = float(((new.double() - mean) ** 2).sum(1).mean())
    ctx.out = out


def _count(ctx: RoundContext, w: torch.Tensor, mixer: Mixer, buffer_bytes: int) -> None:
    """One message per directed edge (node j sends to each out-neighbour: column j's off-diagonal entries) carrying
    what the node exchanged this round; the largest degree and message for the send time."""
    links = (w.clone().fill_diagonal_(0) > 0).sum(0)
    edges = int(links.sum())
    sent = [wire + buffer_bytes for wire in mixer.wire]
    ctx.comm = RoundComm(edges, 0, int(sum(int(links[i]) * sent[i] for i in range(len(sent)))), 0)
    ctx.raw_up, ctx.scratch["degree_sent"] = edges * (mixer.raw + buffer_bytes), (int(links.max()), max(sent))


def choco(exp: Experiment, w: torch.Tensor, ends: torch.Tensor, hat: torch.Tensor, r: int, gamma: float,
          key: str = "params"):
    """CHOCO-gossip: compress ``y_i - x_hat_i``, update the public copies, step toward the neighbours'
    copies; returns (new rows, new copies, each node's message bytes)."""
    sent, wire = [], []
    for i in range(len(ends)):
        q, size, _ = exp.channel.send(ends[i] - hat[i], "gossip", r, i, {}, key)
        sent.append(q)
        wire.append(size)
    hat = hat + torch.stack(sent)
    nodes = ends + gamma * ((w @ hat.double()) - hat.double()).to(ends.dtype)
    return nodes, hat, wire
