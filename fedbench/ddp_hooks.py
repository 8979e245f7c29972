"""DDP communication hooks for the data-parallel baseline, each counting what goes on the wire.

PyTorch's own hooks do the work: the default all-reduce, ``fp16_compress_hook`` / ``bf16_compress_hook``
(gradients cast to half precision for the all-reduce) and ``powerSGD_hook`` (Vogels et al. 2019: P and
Q factors all-reduced instead of each gradient matrix, with its own error feedback and warm start).
Each is wrapped to record the bytes it all-reduces per bucket and how long the reduction takes, so
``paradigm=data_parallel compressor=...`` reports measured, compressed bytes. Other compressors have
no DDP hook and are refused.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook

from fedbench.compress import Compressor
from fedbench.errors import ConfigError

HOOKS = ("allreduce", "fp16", "bf16", "powersgd")  # the values a Compressor's ``ddp_hook`` may declare


class BucketCounter:
    """Hook state: buckets and bytes all-reduced, and their time (``inner`` is the wrapped hook's state)."""

    def __init__(self, inner: Any = None) -> None:
        self.buckets, self.bytes, self.seconds, self.inner = 0, 0, 0.0, inner


def _powersgd_bytes(state: powerSGD_hook.PowerSGDState, bucket) -> int:  # noqa: ANN001
    """The bytes powerSGD_hook all-reduces for ``bucket`` (its own compress-or-not rule)."""
    if state.iter < state.start_powerSGD_iter:
        return bucket.buffer().numel() * bucket.buffer().element_size()
    total = 0
    for grad in bucket.gradients():
        n, m = (grad.shape[0], math.prod(grad.shape[1:])) if grad.dim() > 1 else (1, grad.numel())
        worth, full, small = powerSGD_hook._should_compress(n, m, state.matrix_approximation_rank,
                                                             state.min_compression_rate)
        total += (small if grad.dim() > 1 and worth else full) * grad.element_size()
    return total


def counting_hook(compressor: Compressor, seed: int) -> tuple[BucketCounter, Callable]:
    """(state, hook) for the run's compressor (its declared ``ddp_hook``), recording bytes and time per bucket."""
    name = compressor.ddp_hook
    if name not in HOOKS:
        raise ConfigError(f"compressor: paradigm=data_parallel compresses through PyTorch's DDP communication hooks; "
                          f"{compressor.name} declares none (compressors with one: none, fp16, bf16, powersgd)")
    options = compressor.options
    if name == "powersgd":
        inner = powerSGD_hook.PowerSGDState(process_group=None, matrix_approximation_rank=options.get("rank", 2),
                                            start_powerSGD_iter=2, use_error_feedback=True, warm_start=True,
                                            random_seed=seed)
    else:
        inner = None
    counter = BucketCounter(inner)

    def hook(state: BucketCounter, bucket):  # noqa: ANN001, ANN202 - DDP checks a hook's signature
        buffer = bucket.buffer()
        if name == "powersgd":
            size = _powersgd_bytes(state.inner, bucket)
            fut = powerSGD_hook.powerSGD_hook(state.inner, bucket)
        elif name in ("fp16", "bf16"):
            size = buffer.numel() * 2
            cast = default_hooks.fp16_compress_hook if name == "fp16" else default_hooks.bf16_compress_hook
            fut = cast(None, bucket)
        else:
            size = buffer.numel() * buffer.element_size()
            fut = default_hooks.allreduce_hook(None, bucket)
        state.buckets += 1
        state.bytes += size
        start = time.perf_counter()

        def done(f: torch.futures.Future) -> torch.Tensor:
            state.seconds += time.perf_counter() - start
            return f.value()

        return fut.then(done)

    return counter, hook
