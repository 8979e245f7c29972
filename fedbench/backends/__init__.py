"""Backends: how a round's client jobs are executed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Backend:
    """``map(job, clients)`` runs ``job(client)`` for each client and returns results in client order
    on every rank; only rank 0 (``is_main``) evaluates and writes outputs."""

    name: str
    map: Callable[[Callable[[int], R], Sequence[int]], list[R]]
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0
