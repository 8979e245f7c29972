"""torch.distributed backend: a round's clients are split across ranks.

Launch with ``torchrun --nproc_per_node N -m fedbench backend=ddp ...``, under SLURM with
``srun`` (one task per rank) or with ``mpirun``: rank and world size come from the launcher's
environment (torchrun's ``RANK``/``WORLD_SIZE``, SLURM's ``SLURM_PROCID``/``SLURM_NTASKS``, Open MPI's
``OMPI_COMM_WORLD_RANK``/``OMPI_COMM_WORLD_SIZE``). Rank r trains clients ``r, r + N, ...`` of the
sampled list with the same local loop as the in-process backend; the local results are
all-gathered so every rank applies the same server update, and only rank 0 writes outputs.
Because every random draw is keyed by (seed, round, client), the numbers equal the in-process
backend's. gloo on CPU, NCCL when every rank has a GPU.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import torch
import torch.distributed as dist

from fedbench.backends import Backend

_ENV = (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"))


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from torchrun, SLURM or Open MPI variables; (0, 1) when launched plainly."""
    for rank_key, world_key in _ENV:
        if rank_key in os.environ and world_key in os.environ:
            return int(os.environ[rank_key]), int(os.environ[world_key])
    return 0, 1


def _init(backend: str) -> None:
    if dist.is_initialized():
        return
    rank, world = rank_and_world()
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() and torch.cuda.device_count() > 0 else "gloo"
    dist.init_process_group(backend, rank=rank, world_size=world)


def ddp(backend: str = "auto") -> Backend:
    """Clients spread over the ranks of a torch.distributed process group (``backend``: auto, gloo, nccl)."""
    _init(backend)
    rank, world = dist.get_rank(), dist.get_world_size()

    def run_map(job: Callable, clients: Sequence[int]) -> list:
        mine = {c: job(c) for c in clients[rank::world]}
        gathered: list[dict | None] = [None] * world
        dist.all_gather_object(gathered, mine)
        merged = {c: res for part in gathered for c, res in part.items()}
        return [merged[c] for c in clients]

    return Backend("ddp", run_map, rank=rank, world_size=world)
