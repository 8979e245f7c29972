"""Sparsification: top-k (the k largest magnitudes; Aji & Heafield 2017, Stich et al. 2018) and
rand-k (k uniformly random entries, rescaled by d / k so the decoded vector is unbiased; Stich et al.,
"Sparsified SGD with Memory", NeurIPS 2018). k = max(1, ceil(ratio d)).

``rescale=false`` keeps rand-k's entries as they are: the unbiased operator scaled by k / d = 1 / (1 + omega),
a contraction (E||C(x) - x||^2 = (1 - k/d) ||x||^2), which is what error feedback needs (Stich et al. 2018 use
rand-k this way with memory). The rescaled, unbiased variant is refused with error feedback.

Wire: k fp32 values and k indices, as int32 (4 bytes) or, with ``pack_indices``, ceil(log2 d) bits
each (rounded up to whole bytes for the message).
"""

from __future__ import annotations

import math

import torch

from fedbench.compress import Compressor
from fedbench.errors import require, require_choice


def k_of(ratio: float, d: int) -> int:
    return max(1, math.ceil(ratio * d))


def index_bytes(k: int, d: int, pack: bool) -> int:
    return math.ceil(k * max(1, math.ceil(math.log2(d))) / 8) if pack else 4 * k


def sparsify(method: str = "topk", ratio: float = 0.1, pack_indices: bool = False, rescale: bool = True) -> Compressor:
    """top-k or rand-k with ``ratio`` = k / d (``rescale``: rand-k's d / k factor, see the module docstring)."""
    require_choice(method, "compressor.method", ["topk", "randk"])
    require(0 < ratio <= 1, "compressor.ratio", "in (0, 1]", ratio)
    require(isinstance(rescale, bool), "compressor.rescale", "true or false", rescale)
    scale_up = method == "randk" and rescale

    def encode(x, gen, state):
        d = x.numel()
        k = k_of(ratio, d)
        if method == "topk":
            idx = x.abs().topk(k, sorted=False).indices
            values = x[idx]
        else:
            idx = torch.randperm(d, generator=gen)[:k].to(x.device)
            values = x[idx] * (d / k) if scale_up else x[idx]
        return {"idx": idx, "values": values, "d": d}, state

    def decode(m):
        out = torch.zeros(m["d"], dtype=m["values"].dtype, device=m["values"].device)
        out[m["idx"]] = m["values"]
        return out

    def wire_bytes(m):
        return 4 * m["values"].numel() + index_bytes(m["values"].numel(), m["d"], pack_indices)

    options = {"ratio": ratio, "pack_indices": pack_indices, **({"rescale": rescale} if method == "randk" else {})}
    return Compressor(method, encode, decode, wire_bytes, unbiased=scale_up, options=options)


def topk(ratio: float = 0.1, pack_indices: bool = False) -> Compressor:
    """Top-k: the k = ceil(ratio d) largest magnitudes."""
    return sparsify("topk", ratio, pack_indices)


def randk(ratio: float = 0.1, pack_indices: bool = False, rescale: bool = True) -> Compressor:
    """Rand-k: k = ceil(ratio d) random entries, rescaled by d / k (unbiased) unless ``rescale`` is false."""
    return sparsify("randk", ratio, pack_indices, rescale)
