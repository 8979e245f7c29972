"""Scaled sign compression: ``(||x||_1 / d) sign(x)`` (signSGD with a magnitude, Bernstein, Wang,
Azizzadenesheli, Anandkumar, "signSGD: Compressed Optimisation for Non-Convex Problems", ICML 2018;
with error feedback it is EF-SignSGD, Karimireddy, Rebjock, Stich, Jaggi, "Error Feedback Fixes
SignSGD and other Gradient Compression Schemes", ICML 2019). Wire: d bits + one fp32 scale."""

from __future__ import annotations

import math

import torch

from fedbench.compress import Compressor


def sign() -> Compressor:
    """Scaled sign."""

    def encode(x, gen, state):
        return {"scale": x.abs().mean(), "sign": torch.where(x >= 0, 1.0, -1.0).to(x.dtype)}, state

    return Compressor("sign", encode, lambda m: m["scale"] * m["sign"], lambda m: 4 + math.ceil(m["sign"].numel() / 8))
