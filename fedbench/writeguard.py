"""Checks a run makes just before it writes a round's records (the metrics row, then the checkpoint).

A launcher that can hand a job to another machine while the first is unreachable (``hydra/launcher=dask``)
registers a check here for the duration of the job: when the job has been taken over, the check ends the
stale attempt before its write instead of after it. Outside such a launcher nothing is registered and
:func:`check` costs one empty loop.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

_CHECKS: list[Callable[[], None]] = []


@contextmanager
def guarded_by(check: Callable[[], None]) -> Iterator[None]:
    """Call ``check`` (which raises or ends the process to stop a write) before each round's records while
    the block runs."""
    _CHECKS.append(check)
    try:
        yield
    finally:
        _CHECKS.remove(check)


def check() -> None:
    """Run every registered check (the round loop calls this before writing a round's records)."""
    for registered in list(_CHECKS):
        registered()
