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
import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from fedbench.algorithms.base import LocalResult
from fedbench.backends.base import Backend, BackendCapabilities, declares
from fedbench.device import resolve_device
from fedbench.errors import require, require_choice

_ENV = (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"))


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from torchrun, SLURM or Open MPI variables; (0, 1) when launched plainly."""
    for rank_key, world_key in _ENV:
        if rank_key in os.environ and world_key in os.environ:
            return int(os.environ[rank_key]), int(os.environ[world_key])
    return 0, 1


def _init(backend: str, device: torch.device) -> bool:
    """Join (or, under a launcher, create) the process group; True when this call created it."""
    if dist.is_initialized():
        return False
    rank, world = rank_and_world()
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":  # one GPU per local rank
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=world)
    return True


TENSOR_FIELDS = ("params", "grad", "buffers")


def exchange(mine: dict[int, Any], world: int, device: torch.device) -> dict[int, Any]:
    """Every rank's results on every rank, their tensors on ``device``. Local results travel as tensors: their flat
    parameter vectors (and gradients, buffers) with ``all_gather`` on one padded (clients, P) tensor per field, on
    the GPU with NCCL; only the small rest (ids, counts, losses, logged values) is pickled. Other results are
    pickled whole."""
    if not all(isinstance(r, LocalResult) for r in mine.values()):
        gathered: list[dict | None] = [None] * world
        dist.all_gather_object(gathered, mine)
        return {c: res for part in gathered for c, res in part.items()}
    light = {c: replace(r, **{f: None for f in TENSOR_FIELDS}) for c, r in mine.items()}
    shapes = {c: {f: (getattr(r, f).numel(), getattr(r, f).dtype) for f in TENSOR_FIELDS if getattr(r, f) is not None}
              for c, r in mine.items()}
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, (light, shapes))
    merged = {c: res for part, _ in parts for c, res in part.items()}
    sizes = {c: sh for _, part in parts for c, sh in part.items()}
    wire = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    rows = max(len(part) for part, _ in parts)
    for f in TENSOR_FIELDS:
        kinds = {sh[f] for sh in sizes.values() if f in sh}
        if not kinds:
            continue
        if len(kinds) != 1 or any(f not in sh for sh in sizes.values()):
            raise RuntimeError(f"ddp: clients' {f} differ in presence or size ({kinds}); cannot gather them as one tensor")
        (n, dtype), = kinds
        local = torch.zeros(rows, n, dtype=dtype, device=wire)
        for i, c in enumerate(mine):
            local[i] = getattr(mine[c], f)
        out = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(out, local)
        for (part, _), block in zip(parts, out):
            block = block.to(device)
            for i, c in enumerate(part):
                merged[c] = replace(merged[c], **{f: block[i].clone()})
    return merged


CAPABILITIES = BackendCapabilities(devices=("cpu", "cuda"), process_group=True)


@declares(CAPABILITIES)
def ddp(backend: str = "auto", workers: int | None = None, threads: int | None = None, device: str = "auto") -> Backend:
    """Clients spread over the ranks of a torch.distributed process group.

    Args:
        backend: ``auto`` (NCCL when this rank's device is a GPU, else gloo), ``gloo`` or ``nccl``.
        workers: ranks to start on this machine when no launcher did (``fedbench.launch``);
            null = whatever torchrun / srun / mpirun started (1 when launched plainly).
        threads: torch intra-op threads per rank (null = torch's default); 1 for scaling studies.
        device: this rank's device (the top-level ``device``, :mod:`fedbench.device`); ``auto``/``cuda``: the GPU
            of its local rank.
    """
    require_choice(backend, "backend.backend", ("auto", "gloo", "nccl"))
    require(backend != "nccl" or torch.cuda.device_count() > 0, "backend.backend",
            "auto or gloo on a machine without a CUDA GPU (NCCL needs GPUs)", backend)
    dev = resolve_device(device)
    require(backend != "nccl" or dev.type == "cuda", "backend.backend", "auto or gloo with device=cpu (NCCL "
            "exchanges GPU tensors)", backend)
    created = _init(backend, dev)
    rank, world = dist.get_rank(), dist.get_world_size()
    times: list = []

    def run_map(job: Callable, clients: Sequence[int]) -> list:
        t0 = time.perf_counter()
        mine = {c: job(c) for c in clients[rank::world]}
        t1 = time.perf_counter()
        dist.barrier()  # idle time: waiting for the slowest rank
        t2 = time.perf_counter()
        merged = exchange(mine, world, dev)
        t3 = time.perf_counter()
        timing: list = [None] * world
        dist.all_gather_object(timing, (t1 - t0, t2 - t1, t3 - t2))
        times[:] = [{"rank": i, "compute_s": a, "wait_s": b, "comm_s": c} for i, (a, b, c) in enumerate(timing)]
        return [merged[c] for c in clients]

    def agree(flag: bool) -> bool:
        box = [flag]
        dist.broadcast_object_list(box, src=0)
        return bool(box[0])

    def close() -> None:
        if created and dist.is_initialized():
            dist.destroy_process_group()

    return Backend("ddp", run_map, rank=rank, world_size=world, agree=agree, rank_times=times, close=close,
                   capabilities=CAPABILITIES)
