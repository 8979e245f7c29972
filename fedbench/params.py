"""Flat-vector parameter math: the one place aggregation arithmetic lives.

Models travel as one flat fp32 vector (``torch.nn.utils.parameters_to_vector``).
Aggregation, server optimizers, compression and byte counting are then plain
tensor ops on these vectors.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn


def get_flat(module: nn.Module | Sequence[Tensor]) -> Tensor:
    """A detached copy of the module's parameters (or of the list ``module.parameters()`` gave, which a caller that
    reads and writes them per client lists once) as one new flat vector."""
    params = module.parameters() if isinstance(module, nn.Module) else module
    return torch.cat([p.detach().reshape(-1) for p in params])  # cat allocates: a copy, never a view


def set_flat(module: nn.Module | Sequence[Tensor], flat: Tensor) -> None:
    """Copy ``flat`` into the module's parameters (or into the list of them; ``flat`` itself is never aliased)."""
    offset = 0
    with torch.no_grad():
        for p in (module.parameters() if isinstance(module, nn.Module) else module):
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n
    if offset != flat.numel():
        raise ValueError(f"flat vector has {flat.numel()} entries, module has {offset} parameters")


def get_buffers(module: nn.Module) -> Tensor | None:
    """The module's buffers (BatchNorm running mean/var and batch counts) as one flat fp32 vector,
    or None when it has none. Integer buffers are exact in fp32 up to 2^24."""
    buffers = list(module.buffers())
    if not buffers:
        return None
    return torch.cat([b.detach().reshape(-1).to(torch.float32) for b in buffers])


def set_buffers(module: nn.Module, flat: Tensor) -> None:
    """Copy ``flat`` into the module's buffers (integer buffers rounded, e.g. averaged batch counts)."""
    offset = 0
    with torch.no_grad():
        for b in module.buffers():
            n = b.numel()
            part = flat[offset : offset + n].view_as(b)
            b.copy_(part if b.is_floating_point() else part.round())
            offset += n
    if offset != flat.numel():
        raise ValueError(f"flat vector has {flat.numel()} entries, module has {offset} buffer entries")


def flat_view(module: nn.Module) -> Tensor:
    """The module's parameters as one differentiable flat vector (for local loss terms)."""
    return torch.cat([p.reshape(-1) for p in module.parameters()])


def normalized_weights(weights: Sequence[float]) -> Tensor:
    """Weights scaled to sum to one; rejects negative or all-zero weights."""
    w = torch.as_tensor(weights, dtype=torch.float64)
    if w.numel() == 0 or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    return w / w.sum()


def weighted_mean(vectors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """sum_k w_k v_k / sum_k w_k, accumulated in float64 and returned in the vectors' dtype."""
    if len(vectors) != len(weights):
        raise ValueError(f"{len(vectors)} vectors but {len(weights)} weights")
    return _accumulate(vectors, normalized_weights(weights).tolist())


def _accumulate(vectors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """sum_k w_k v_k in one float64 accumulator (each vector cast as it is added: no (k, P) float64 stack, about
    10x faster than a stacked matmul for 50 models of 200k parameters), returned in the vectors' dtype."""
    out = torch.zeros(vectors[0].shape, dtype=torch.float64, device=vectors[0].device)
    for w, v in zip(weights, vectors):
        out.add_(v, alpha=float(w))
    return out.to(vectors[0].dtype)


def mean(vectors: Sequence[Tensor]) -> Tensor:
    """Unweighted mean of vectors."""
    return weighted_mean(vectors, [1.0] * len(vectors))


def weighted_sum(vectors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """sum_k w_k v_k (weights not normalized), in float64 internally."""
    if len(vectors) != len(weights):
        raise ValueError(f"{len(vectors)} vectors but {len(weights)} weights")
    return _accumulate(vectors, [float(w) for w in weights])


def nbytes(tensors: Mapping[str, Tensor]) -> int:
    """Wire size of a message made of these tensors, in bytes."""
    return sum(t.numel() * t.element_size() for t in tensors.values())
