"""What a run ran on, recorded in ``summary.json`` for the systems report."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from fedbench import allocator, threads


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hardware(world_size: int = 1) -> dict[str, Any]:
    """Host, CPU model and cores, torch threads and the CPU limits they were chosen from (affinity, SLURM,
    cgroup quota; :mod:`fedbench.threads`), the C allocator's settings (:mod:`fedbench.allocator`), GPUs, versions
    and the run's process count."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "host": platform.node(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "usable_cores": affinity,
        "torch_threads": torch.get_num_threads(), "threads_source": threads.applied().get("source", "torch default"),
        "cpu_limits": threads.usable_cpus(), "local_ranks": threads.local_ranks(), "allocator": allocator.applied(),
        "world_size": world_size,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
    }
