"""Half-precision casting: fp16 or bf16 on the wire (2 bytes per entry), decoded back to fp32
(as FLSim's half-precision channel and PyTorch's ``fp16_compress_hook``)."""

from __future__ import annotations

import torch

from fedbench.compress import Compressor
from fedbench.errors import require_choice

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def cast(dtype: str = "fp16") -> Compressor:
    """Cast to ``dtype`` (fp16 | bf16) for the wire."""
    require_choice(dtype, "compressor.dtype", list(DTYPES))
    target = DTYPES[dtype]

    def encode(x, gen, state):
        return {"x": x.to(target), "dtype": x.dtype}, state

    return Compressor(dtype, encode, lambda m: m["x"].to(m["dtype"]), lambda m: 2 * m["x"].numel(),
                      ddp_hook=dtype, options={"dtype": dtype})


def fp16() -> Compressor:
    """IEEE half precision on the wire."""
    return cast("fp16")


def bf16() -> Compressor:
    """bfloat16 on the wire."""
    return cast("bf16")
