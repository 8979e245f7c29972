"""Per-stage time and bytes of a pipeline step: compute, send, receive, idle, activation/gradient bytes.

Compute is timed around the stage's ``forward_one_chunk`` / ``backward_one_chunk``; send and receive
around the schedule's point-to-point helpers (posting a batch of ``isend``/``irecv`` and waiting for it;
a batch that receives counts as receive, which includes waiting for the neighbour stage); idle is the
rest of the step. Bytes are what this stage sends: its output activations forward (unless last) and
the gradient of its input backward (unless first), from the tensors' sizes.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from torch import Tensor, nn
from torch.distributed.pipelining import schedules


@dataclass
class StageClock:
    """Running totals of one stage (reset each epoch by the runner)."""

    compute_s: float = 0.0
    send_s: float = 0.0
    recv_s: float = 0.0
    step_s: float = 0.0
    allreduce_s: float = 0.0
    bytes_sent: int = 0
    messages: int = 0
    allreduce_bytes: int = 0
    steps: int = 0
    _kinds: dict[int, str] = field(default_factory=dict)

    @property
    def idle_s(self) -> float:
        return max(self.step_s - self.compute_s - self.send_s - self.recv_s, 0.0)

    @property
    def bubble(self) -> float:
        """Measured bubble fraction: the share of the step this stage did not compute."""
        return 1.0 - self.compute_s / self.step_s if self.step_s > 0 else float("nan")

    def reset(self) -> None:
        """Zero every total (the patched stage methods keep this same object)."""
        self.__init__()  # type: ignore[misc]

    def snapshot(self) -> dict[str, float]:
        return {"compute_s": self.compute_s, "send_s": self.send_s, "recv_s": self.recv_s, "idle_s": self.idle_s,
                "step_s": self.step_s, "allreduce_s": self.allreduce_s, "bytes_sent": self.bytes_sent,
                "allreduce_bytes": self.allreduce_bytes, "messages": self.messages, "steps": self.steps, "bubble": self.bubble}


def theoretical_bubble(stages: int, microbatches: int) -> float:
    """GPipe's (and 1F1B's) bubble fraction with equal stage times: (p - 1) / (m + p - 1) (Huang et al. 2019)."""
    return (stages - 1) / (microbatches + stages - 1)


def _bytes(t: Any) -> int:
    return t.numel() * t.element_size() if isinstance(t, Tensor) else 0


def instrument(stage: Any, module: nn.Module, clock: StageClock, first: bool, last: bool) -> None:
    """Time the stage's compute and count the bytes it sends (patches this stage object only)."""
    forward, backward = stage.forward_one_chunk, stage.backward_one_chunk
    counting = [False]

    def timed(fn: Any, counts_bytes: bool) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            counting[0] = counts_bytes
            try:
                return fn(*args, **kwargs)
            finally:
                counting[0] = False
                clock.compute_s += time.perf_counter() - t0

        return call

    def count(mod: nn.Module, inputs: tuple, output: Any) -> None:
        if not counting[0]:  # e.g. the stage's shape-inference forward at its first step: nothing is sent
            return
        if not last:
            clock.bytes_sent += _bytes(output)
            clock.messages += 1
        if not first and inputs:
            clock.bytes_sent += _bytes(inputs[0])  # the gradient of the input goes back, same size
            clock.messages += 1

    stage.forward_one_chunk, stage.backward_one_chunk = timed(forward, True), timed(backward, False)
    module.register_forward_hook(count)


@contextmanager
def timed_p2p(clock: StageClock) -> Iterator[None]:
    """Time the schedule's point-to-point batches while a step runs (restored afterwards)."""
    post, wait = schedules._batch_p2p, schedules._wait_batch_p2p

    def timed_post(ops: Any, desc: str | None = None) -> Any:
        t0 = time.perf_counter()
        works = post(ops, desc=desc)
        kind = "recv" if "recv" in (desc or "") else "send"
        _add(clock, kind, time.perf_counter() - t0)
        for w in works:
            clock._kinds[id(w)] = kind
        return works

    def timed_wait(works: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return wait(works)
        finally:
            kind = clock._kinds.pop(id(works[0]), "recv") if works else "recv"
            for w in works[1:]:
                clock._kinds.pop(id(w), None)
            _add(clock, kind, time.perf_counter() - t0)

    schedules._batch_p2p, schedules._wait_batch_p2p = timed_post, timed_wait
    try:
        yield
    finally:
        schedules._batch_p2p, schedules._wait_batch_p2p = post, wait


def _add(clock: StageClock, kind: str, seconds: float) -> None:
    if kind == "recv":
        clock.recv_s += seconds
    else:
        clock.send_s += seconds
