"""How many torch threads a process should use: the CPUs it may actually run on, shared among its local ranks.

torch's default is the machine's core count, whatever the process's affinity mask, its SLURM allocation or its
container's CPU quota allow. Oversubscribed OpenMP threads spin against each other: on a 2-core machine with one
other busy process, a run with 2 torch threads was ~30x slower per round than with 1. ``default_threads`` takes
the smallest of the affinity mask, ``SLURM_CPUS_PER_TASK`` and the cgroup quota (v2 ``cpu.max``, v1
``cpu.cfs_quota_us / cpu.cfs_period_us``), divided among the local ranks.

That default applies only when the user gave no count (:func:`choose_threads`): ``backend.threads`` wins, then
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` in the environment, then a ``torch.set_num_threads`` call made after
fedbench was imported and before ``run()`` (a call made before importing fedbench cannot be told from torch's own
default). ``summary.json`` records the count and its source (``hardware.threads_source``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpus(root: Path = CGROUP) -> float | None:
    """The container's CPU quota in CPUs (None when unlimited or unknown)."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "200000 100000"
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())  # cgroup v1: -1 = unlimited
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus() -> dict[str, Any]:
    """Each limit this process runs under and the smallest (``cpus``, at least 1)."""
    limits: dict[str, Any] = {"machine": os.cpu_count() or 1}
    if hasattr(os, "sched_getaffinity"):
        limits["affinity"] = len(os.sched_getaffinity(0))
    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        limits["slurm_cpus_per_task"] = int(os.environ["SLURM_CPUS_PER_TASK"])
    quota = cgroup_cpus()
    if quota is not None:
        limits["cgroup_quota"] = quota
    binding = [v for k, v in limits.items() if k != "machine" or "affinity" not in limits]
    return {**limits, "cpus": max(1, math.floor(min(binding)))}


def local_ranks() -> int:
    """Ranks of this job on this machine (torchrun's LOCAL_WORLD_SIZE, SLURM's tasks per node, Open MPI's local
    size; 1 when launched plainly)."""
    for key in ("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"):
        value = os.environ.get(key, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def default_threads(ranks: int | None = None) -> int:
    """Torch intra-op threads for each of ``ranks`` local processes (default: :func:`local_ranks`)."""
    return max(1, usable_cpus()["cpus"] // max(1, ranks or local_ranks()))


ENV_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_state: dict[str, Any] = {}  # torch's count when first seen here, what fedbench last set, and the last choice


def _torch_threads() -> int:
    import torch

    count = torch.get_num_threads()
    _state.setdefault("baseline", count)
    return count


_torch_threads() if "torch" in __import__("sys").modules else None


def choose_threads(configured: int | None, ranks: int | None = None) -> tuple[int, str]:
    """(threads, source): ``backend.threads``, else the environment's ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, else a
    count the user set with ``torch.set_num_threads`` since fedbench was imported, else :func:`default_threads`."""
    if configured:
        return int(configured), "backend.threads"
    for key in ENV_KEYS:
        value = os.environ.get(key, "").strip()
        if value.isdigit() and int(value) >= 1:
            return int(value), key
    current = _torch_threads()
    if current != _state.get("set_by_fedbench", _state["baseline"]):
        return current, "torch.set_num_threads"
    return default_threads(ranks), "automatic"


def apply_threads(count: int, source: str) -> None:
    """Set torch's intra-op threads and remember the choice for ``summary.json`` (:func:`applied`)."""
    import torch

    _torch_threads()
    torch.set_num_threads(count)
    _state.update(set_by_fedbench=count, applied={"threads": count, "source": source})


def applied() -> dict[str, Any]:
    """The last count fedbench applied in this process and its source (empty before any run)."""
    return dict(_state.get("applied", {}))
