"""Communication compression: a lossy round trip of every message, with its exact wire size.

A compressor is a pair of pure functions, ``encode(x, generator, state) -> (message, state)`` and
``decode(message) -> x_hat``, plus ``wire_bytes(message)``: the bytes that encoding would occupy on the
wire (not fp32 sizes). ``state`` is per client and per tensor (PowerSGD's warm-started Q); the
generator is keyed by (seed, round, client, tensor) so results do not depend on execution order or
backend. :mod:`fedbench.compress.channel` applies a compressor to uploads, broadcasts and gossip
messages, with error feedback (Seide et al. 2014; Karimireddy et al. 2019) or EF21 (Richtarik et al.
2021); one compressor per file in this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import Tensor

State = dict[str, Tensor]


@dataclass(frozen=True)
class Compressor:
    """A compressor as pure functions (see the module docstring).

    Attributes:
        name: short name for logs.
        encode: ``(x, generator, state) -> (message, new state)``; ``message`` is a dict of tensors and ints.
        decode: ``message -> x_hat`` (same shape and dtype as ``x``).
        wire_bytes: ``message -> bytes on the wire``.
        unbiased: E[decode(encode(x))] = x (QSGD, rand-k, fp16 up to rounding); error feedback refuses it.
        needs_shapes: ``encode`` also takes ``shapes=`` (the parameters' shapes): it needs weight matrices (PowerSGD).
        identity: sends every entry as it is (``none``): the uncompressed path is used instead.
        ddp_hook: the PyTorch DDP communication hook that implements it for ``paradigm=data_parallel``
            (``allreduce``, ``fp16``, ``bf16``, ``powersgd``), None where there is none.
        options: the factory's options, for logs.
    """

    name: str
    encode: Callable[[Tensor, Any, State], "tuple[dict[str, Any], State]"]
    decode: Callable[[dict[str, Any]], Tensor]
    wire_bytes: Callable[[dict[str, Any]], int]
    unbiased: bool = False
    needs_shapes: bool = False
    identity: bool = False
    ddp_hook: str | None = None
    options: dict = field(default_factory=dict)


def roundtrip(comp: Compressor, x: Tensor, generator: Any, state: State | None = None,
              shapes: list | None = None) -> tuple[Tensor, int, State]:
    """(x_hat, wire bytes, new state) of one message (``shapes``: when ``x`` is parameter-shaped)."""
    extra = {"shapes": shapes} if comp.needs_shapes else {}
    message, state = comp.encode(x, generator, state or {}, **extra)
    return comp.decode(message), comp.wire_bytes(message), state
