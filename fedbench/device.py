"""The ``device`` knob: where the model, the clients' data and the server and client states live.

``auto`` is the GPU when there is one (under ``backend=ddp`` with NCCL each rank takes its own ``LOCAL_RANK``
GPU), else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` name one. Random draws (batch orders, client sampling,
noise) are made on the CPU from the same (seed, round, client) generators on every device, so a GPU run draws
what a CPU run draws; checkpoints are written with CPU tensors, loadable anywhere.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from fedbench.errors import require

CHOICES = "auto, cpu, cuda or cuda:N"
DEFAULT = "auto"  # conf/config.yaml's value; also taken when a hand-made config has no ``device`` key


def run_device(cfg: Any) -> torch.device:
    """The device a run's config names (its ``device`` key, :data:`DEFAULT` when absent)."""
    return resolve_device(cfg.get("device", DEFAULT))


def check_device(spec: Any, field: str = "device") -> None:
    """Refuse a device that is not ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, or a GPU this machine lacks."""
    require(isinstance(spec, str) and (spec in ("auto", "cpu", "cuda") or
                                       (spec.startswith("cuda:") and spec[5:].isdigit())), field, CHOICES, spec)
    if spec.startswith("cuda"):
        count = torch.cuda.device_count()  # NVML's count: safe before a fork (is_available() may not be)
        index = int(spec[5:]) if ":" in spec else 0
        require(index < count, field, f"cpu or auto on a machine with {count} CUDA GPU(s)", spec)


def resolve_device(spec: str, field: str = "device") -> torch.device:
    """The torch device ``spec`` names; ``auto`` and ``cuda`` take this process's GPU (its local rank's, see
    :func:`local_rank`, modulo the GPUs), ``auto`` the CPU when there is no GPU."""
    check_device(spec, field)
    if spec == "auto" and torch.cuda.device_count() == 0:
        return torch.device("cpu")
    if spec in ("auto", "cuda"):
        return torch.device("cuda", local_rank() % torch.cuda.device_count())
    return torch.device(spec)


def local_rank() -> int:
    """This process's rank on its machine, from torchrun (``LOCAL_RANK``), SLURM (``SLURM_LOCALID``) or Open MPI
    (``OMPI_COMM_WORLD_LOCAL_RANK``); 0 when launched plainly."""
    for key in ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def to_device(tree: Any, device: torch.device) -> Any:
    """``tree`` (tensors in dicts, lists and tuples) with every tensor on ``device``; a tensor already there is
    returned as is (no copy)."""
    if isinstance(tree, torch.Tensor):
        return tree.to(device)
    if isinstance(tree, dict):
        return {k: to_device(v, device) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_device(v, device) for v in tree)
    return tree
