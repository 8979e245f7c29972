"""Start N local worker processes for a distributed run when no launcher did.

``backend=ddp backend.workers=N`` on a plain ``python -m fedbench`` forks N processes on this
machine, each with torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``), so the ddp backend and ``lightning.Trainer`` see the same
environment torchrun would give them. Forking (not spawning) reuses the already imported
torch/Lightning, so a worker starts in milliseconds instead of ~15 s. Under torchrun, srun or
mpirun the launcher's processes are used and ``workers`` must match the world size (or be null).
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable

import torch
import torch.multiprocessing as mp

from fedbench.backends.ddp import rank_and_world
from fedbench.errors import ConfigError, require
from fedbench.threads import apply_threads
from fedbench.validate import is_int


def plan(backend_cfg: Any) -> tuple[int, int | None]:
    """(processes this command must start, threads per process) for a backend config; checks
    ``backend.workers`` and ``backend.threads``. 0 processes: run here (launched, or 1 worker)."""
    workers, threads = backend_cfg.get("workers"), backend_cfg.get("threads")  # absent for backend=inprocess
    require(workers is None or (is_int(workers) and workers >= 1), "backend.workers", "null or an integer >= 1", workers)
    require(threads is None or (is_int(threads) and threads >= 1), "backend.threads", "null or an integer >= 1", threads)
    _, world = rank_and_world()
    if world > 1 or workers is None or workers == 1:
        if world > 1 and workers is not None and workers != world:
            raise ConfigError(f"backend.workers must be null or equal the launcher's world size {world} (got {workers})")
        return 0, threads
    return workers, threads


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, threads: tuple[int, str] | None, fn: Callable, args: tuple) -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        raise RuntimeError("backend.workers: this process already holds a torch.distributed process group, which "
                           "forked workers cannot share; destroy it first or launch with torchrun")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), NODE_RANK="0", GROUP_RANK="0", FEDBENCH_FORKED="1")
    if threads:
        apply_threads(*threads)
    fn(*args)


def spawn(workers: int, threads: tuple[int, str] | None, fn: Callable, *args: Any) -> None:
    """Run ``fn(*args)`` in ``workers`` forked processes forming one process group; re-raise a
    worker's error here (a worker's ConfigError as the same clean ConfigError, not a traceback)."""
    try:
        mp.start_processes(_worker, args=(workers, free_port(), threads, fn, args), nprocs=workers,
                           start_method="fork", join=True)
    except mp.ProcessRaisedException as err:
        last = [line for line in str(err).splitlines() if line.strip()][-1]
        prefix = f"{ConfigError.__module__}.{ConfigError.__name__}: "
        if last.startswith(prefix):
            raise ConfigError(last[len(prefix):]) from None
        raise
