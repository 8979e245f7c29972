"""In-process simulation: clients run one after another in this process."""

from __future__ import annotations

from fedbench.backends import Backend


def inprocess() -> Backend:
    """Sequential clients; the reference every other backend must match."""
    return Backend("inprocess", lambda job, clients: [job(c) for c in clients])
