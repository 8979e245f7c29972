"""QSGD: stochastic uniform quantization to ``levels`` levels per sign.

Alistarh, Grubic, Li, Tomioka, Vojnovic, "QSGD: Communication-Efficient SGD via Gradient Quantization
and Encoding", NeurIPS 2017. Each entry becomes ``||x||_2 sign(x_i) l_i / s`` with ``l_i`` the level
below ``s |x_i| / ||x||`` rounded up with probability equal to the remainder, so the decoded vector is
unbiased. Wire: one fp32 norm, and per entry a sign bit and ceil(log2(s + 1)) bits for the level;
with ``elias=true`` the levels are Elias-gamma coded instead (``2 floor(log2(l + 1)) + 1`` bits for
level l, and a sign bit only for non-zero levels), which is what makes QSGD's sparse outputs cheap.

``rescale=false`` decodes ``Q(x) / (1 + omega)`` with QSGD's variance bound ``omega = min(d / s^2, sqrt(d) / s)``
(Alistarh et al., Lemma 3.1): a contraction, ``E||C(x) - x||^2 <= (1 - 1 / (1 + omega)) ||x||^2``, the form error
feedback needs (Stich, Cordonnier, Jaggi 2018; Karimireddy et al. 2019). The unbiased default is refused with error
feedback. The wire bytes are the same.
"""

from __future__ import annotations

import math

import torch

from fedbench.compress import Compressor
from fedbench.errors import require


def _bits(levels: torch.Tensor, s: int, elias: bool) -> int:
    if not elias:
        return levels.numel() * (1 + math.ceil(math.log2(s + 1)))
    gamma = 2 * torch.floor(torch.log2(levels.double() + 1)) + 1
    return int(gamma.sum().item()) + int((levels > 0).sum().item())


def variance_bound(d: int, s: int) -> float:
    """QSGD's ``omega``: E||Q(x) - x||^2 <= omega ||x||^2 (Alistarh et al. 2017, Lemma 3.1)."""
    return min(d / s**2, math.sqrt(d) / s)


def qsgd(levels: int = 4, elias: bool = False, rescale: bool = True) -> Compressor:
    """QSGD with ``levels`` = s quantization levels (``rescale``: unbiased; false: scaled by 1 / (1 + omega))."""
    require(isinstance(levels, int) and levels >= 1, "compressor.levels", "an integer >= 1", levels)
    require(isinstance(rescale, bool), "compressor.rescale", "true or false", rescale)

    def encode(x, gen, state):
        norm = x.norm()
        if norm == 0:
            return {"norm": norm, "levels": torch.zeros_like(x, dtype=torch.int64), "sign": torch.ones_like(x)}, state
        scaled = levels * x.abs() / norm
        low = scaled.floor()
        up = torch.rand(x.shape, generator=gen, dtype=x.dtype).to(x.device) < (scaled - low)
        return {"norm": norm, "levels": (low + up).to(torch.int64), "sign": torch.sign(x)}, state

    def decode(m):
        q = m["norm"] * m["sign"] * m["levels"].to(m["sign"].dtype) / levels
        return q if rescale else q / (1 + variance_bound(q.numel(), levels))

    def wire_bytes(m):
        return 4 + math.ceil(_bits(m["levels"], levels, elias) / 8)

    return Compressor("qsgd", encode, decode, wire_bytes, unbiased=rescale,
                      options={"levels": levels, "elias": elias, "rescale": rescale})
