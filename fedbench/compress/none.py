"""No compression: fp32 on the wire (4 bytes per entry)."""

from __future__ import annotations

from fedbench.compress import Compressor


def none() -> Compressor:
    """The identity: every entry as fp32."""
    return Compressor("none", lambda x, gen, state: ({"x": x}, state), lambda m: m["x"],
                      lambda m: 4 * m["x"].numel(), unbiased=True,
                      identity=True, ddp_hook="allreduce")
