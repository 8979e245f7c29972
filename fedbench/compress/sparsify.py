"""Sparsification: top-k (the k largest magnitudes; Aji & Heafield 2017, Stich et al. 2018) and
rand-k (k uniformly random entries, rescaled by d / k so the decoded vector is unbiased; Stich et al.,
"Sparsified SGD with Memory", NeurIPS 2018). k = max(1, ceil(ratio d)).

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


def sparsify(method: str = "topk", ratio: float = 0.1, pack_indices: bool = False) -> Compressor:
    """top-k or rand-k with ``ratio`` = k / d."""
    require_choice(method, "compressor.method", ["topk", "randk"])
    require(0 < ratio <= 1, "compressor.ratio", "in (0, 1]", ratio)

    def encode(x, gen, state):
        d = x.numel()
        k = k_of(ratio, d)
        if method == "topk":
            idx = x.abs().topk(k, sorted=False).indices
            values = x[idx]
        else:
            idx = torch.randperm(d, generator=gen)[:k].to(x.device)
            values = x[idx] * (d / k)
        return {"idx": idx, "values": values, "d": d}, state

    def decode(m):
        out = torch.zeros(m["d"], dtype=m["values"].dtype, device=m["values"].device)
        out[m["idx"]] = m["values"]
        return out

    def wire_bytes(m):
        return 4 * m["values"].numel() + index_bytes(m["values"].numel(), m["d"], pack_indices)

    return Compressor(method, encode, decode, wire_bytes, unbiased=method == "randk",
                      options={"ratio": ratio, "pack_indices": pack_indices})


def topk(ratio: float = 0.1, pack_indices: bool = False) -> Compressor:
    """Top-k: the k = ceil(ratio d) largest magnitudes."""
    return sparsify("topk", ratio, pack_indices)


def randk(ratio: float = 0.1, pack_indices: bool = False) -> Compressor:
    """Rand-k: k = ceil(ratio d) random entries, rescaled by d / k (unbiased)."""
    return sparsify("randk", ratio, pack_indices)
