"""Per-round callbacks: what loggers, early stopping and (later) Optuna pruning plug into.

A callback is a record of plain functions the run calls on rank 0 (other ranks of a distributed
run get none, and a stop request is broadcast from rank 0 so every rank stops together):

* ``on_round_start(round)``;
* ``on_round_end(row, server, client_states)``: the finished round's metrics row (cumulative
  columns included) and the states after it; returning True asks the run to stop after this round
  (it checkpoints first);
* ``on_run_end(summary)``: once, with the summary that ``summary.json`` holds.

Callback factories, like the ``logger`` and ``callbacks`` configs, are called as
``factory(output_dir, config, history)``: ``history`` holds the rows restored from a checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from torch import Tensor

from fedbench.metrics import rounds_to_target

log = logging.getLogger("fedbench")
State = dict[str, Tensor]
Factory = Callable[..., "Callback"]


def _nothing(*args: Any) -> None:
    return None


@dataclass(frozen=True)
class Callback:
    """Hooks of one run (see the module docstring)."""

    on_round_end: Callable[[dict[str, Any], State, dict[int, State]], bool | None] = _nothing
    on_run_end: Callable[[dict[str, Any]], None] = _nothing
    on_round_start: Callable[[int], None] = _nothing


def chain(callbacks: Sequence[Callback]) -> Callback:
    """One callback calling each in order; it asks to stop when any of them does."""

    def on_round_end(row: dict[str, Any], server: State, clients: dict[int, State]) -> bool:
        return any([bool(cb.on_round_end(row, server, clients)) for cb in callbacks])  # a list: every one runs

    def on_run_end(summary: dict[str, Any]) -> None:
        for cb in callbacks:
            cb.on_run_end(summary)

    def on_round_start(r: int) -> None:
        for cb in callbacks:
            cb.on_round_start(r)

    return Callback(on_round_end, on_run_end, on_round_start)


def stop_at_target(target: float) -> Callback:
    """Stop once a round's evaluation reaches ``target`` accuracy (the ``stop_at_target`` knob)."""

    def on_round_end(row: Mapping[str, Any], server: State, clients: dict[int, State]) -> bool:
        if rounds_to_target([row], target) is None:
            return False
        log.info("reached target accuracy %.4f at round %d: stopping (stop_at_target)", target, row["round"])
        return True

    return Callback(on_round_end)
