"""In-process simulation: clients run one after another in this process."""

from __future__ import annotations

import time

from fedbench.backends.base import Backend, BackendCapabilities, declares

CAPABILITIES = BackendCapabilities(devices=("cpu", "cuda"))


@declares(CAPABILITIES)
def inprocess(threads: int | None = None) -> Backend:
    """Sequential clients; the reference every other backend must match.

    Args:
        threads: torch intra-op threads (null: the CPUs this process may use, :mod:`fedbench.threads`); ``run``
            applies it before the backend is built.
    """
    times: list = []

    def run_map(job, clients):
        t0 = time.perf_counter()
        results = [job(c) for c in clients]
        times[:] = [{"rank": 0, "compute_s": time.perf_counter() - t0, "wait_s": 0.0, "comm_s": 0.0}]
        return results

    return Backend("inprocess", run_map, rank_times=times, capabilities=CAPABILITIES)
