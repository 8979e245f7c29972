"""PowerSGD: rank-r approximation of each weight matrix by one step of power iteration.

Vogels, Karimireddy, Jaggi, "PowerSGD: Practical Low-Rank Gradient Compression for Distributed
Optimization", NeurIPS 2019 (Algorithm 1). Each parameter of matrix shape n x m (convolution kernels
flattened to out x rest) is sent as ``P = orth(M Q)`` (n x r) and ``Q' = M^T P`` (m x r), decoded as
``P Q'^T``; Q is warm-started from the sender's previous round (kept in its compressor state, so it
is checkpointed with the client). Vectors (biases), matrices too small to gain, and tensors that are
not parameter-shaped (buffers, scalars) go as fp32. Wire: 4 (n + m) r bytes per compressed matrix.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from fedbench.compress import Compressor
from fedbench.errors import require
from fedbench.seeding import torch_generator


def _matrix(shape: Sequence[int]) -> tuple[int, int] | None:
    if len(shape) < 2:
        return None
    return shape[0], math.prod(shape[1:])


def powersgd(rank: int = 2) -> Compressor:
    """PowerSGD with ``rank`` r (one power iteration, warm start)."""
    require(isinstance(rank, int) and rank >= 1, "compressor.rank", "an integer >= 1", rank)

    def encode(x, gen, state, shapes=None):
        if shapes is None:
            return {"dense": x}, state
        parts, new_state, offset = [], dict(state), 0
        for i, shape in enumerate(shapes):
            size = math.prod(shape)
            block = x[offset : offset + size]
            offset += size
            nm = _matrix(shape)
            if nm is None or (nm[0] + nm[1]) * rank >= nm[0] * nm[1]:
                parts.append({"dense": block})
                continue
            n, m = nm
            q = state.get(f"q{i}")
            if q is None:  # the first round: a seeded random start, as in the paper
                q = torch.randn(m, rank, generator=torch_generator(0, "powersgd", i, m, rank), dtype=x.dtype).to(x.device)
            mat = block.reshape(n, m)
            p = torch.linalg.qr(mat @ q).Q
            q = mat.T @ p
            new_state[f"q{i}"] = q
            parts.append({"p": p, "q": q})
        return {"parts": parts}, new_state

    def decode(msg):
        if "dense" in msg:
            return msg["dense"]
        return torch.cat([part["dense"] if "dense" in part else (part["p"] @ part["q"].T).reshape(-1)
                          for part in msg["parts"]])

    def wire_bytes(msg):
        if "dense" in msg:
            return 4 * msg["dense"].numel()
        return sum(4 * sum(t.numel() for t in part.values()) for part in msg["parts"])

    return Compressor("powersgd", encode, decode, wire_bytes, needs_shapes=True, ddp_hook="powersgd",
                      options={"rank": rank})
