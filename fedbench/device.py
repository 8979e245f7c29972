"""The ``device`` knob: where the model, the clients' data and the server and client states live.

``auto`` is the GPU when there is one (under ``backend=ddp`` with NCCL each rank takes its own ``LOCAL_RANK``
GPU), else Apple's MPS once fedbench's paths are MPS-safe (:data:`MPS_READY`), else the CPU; ``cpu``, ``cuda``,
``cuda:N`` and ``mps`` name one. Random draws (batch orders, client sampling,
noise) are made on the CPU from the same (seed, round, client) generators on every device, so a GPU run draws
what a CPU run draws; checkpoints are written with CPU tensors, loadable anywhere.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from fedbench.errors import require

CHOICES = "auto, cpu, cuda, cuda:N or mps"
DEFAULT = "auto"  # conf/config.yaml's value; also taken when a hand-made config has no ``device`` key
# Apple's MPS has no float64, and fedbench accumulates in float64 on the run's device (the list is in
# MPS_FLOAT64_SITES): until those sites keep float64 on the CPU or use float32 on MPS, device=mps is refused before
# any work, even where MPS exists, and auto does not pick it. Flip this once they do.
MPS_READY = False
MPS_FLOAT64_SITES = (
    "fedbench/local.py evaluate(): the loss sum (every evaluation)",
    "fedbench/params.py _accumulate(): the weighted-mean accumulator (aggregator=mean, every server update)",
    "fedbench/aggregators.py _stack(), krum_scores(), centered_clipping(): the robust aggregators",
    "fedbench/privacy/dp_fedavg.py dp_sum_mean(): DP-FedAvg's clipped sum and noise",
    "fedbench/attacks.py: ALIE/IPM statistics and the Gaussian attack's noise",
    "fedbench/topology/gossip.py: the mixing matrix, gossip/CHOCO averaging, consensus distance",
    "fedbench/compress/qsgd.py _bits(): Elias code lengths (compressor.elias=true)",
    "fedbench/paradigms.py: the baselines' per-epoch statistics tensor",
)


def run_device(cfg: Any) -> torch.device:
    """The device a run's config names (its ``device`` key, :data:`DEFAULT` when absent)."""
    return resolve_device(cfg.get("device", DEFAULT))


def cuda_count() -> int:
    """CUDA GPUs on this machine (NVML's count: safe before a fork, where ``is_available()`` may not be)."""
    return torch.cuda.device_count()


def mps_available() -> bool:
    """Apple's Metal Performance Shaders backend is built into this torch and usable here."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_device(spec: Any, field: str = "device") -> None:
    """Refuse a device that is not ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, a GPU this machine lacks,
    or MPS where it is missing (or while fedbench is not MPS-safe, :data:`MPS_READY`)."""
    require(isinstance(spec, str) and (spec in ("auto", "cpu", "cuda", "mps") or
                                       (spec.startswith("cuda:") and spec[5:].isdigit())), field, CHOICES, spec)
    if spec.startswith("cuda"):
        count = cuda_count()
        index = int(spec[5:]) if ":" in spec else 0
        require(index < count, field, f"cpu or auto on a machine with {count} CUDA GPU(s)", spec)
    if spec == "mps":
        require(mps_available(), field, "auto, cpu or cuda on a machine without Apple MPS "
                                        "(torch.backends.mps.is_available() is False)", spec)
        require(MPS_READY, field, "auto or cpu for now: Apple MPS has no float64, which fedbench still uses on the "
                                  f"run's device ({len(MPS_FLOAT64_SITES)} sites: fedbench.device.MPS_FLOAT64_SITES)", spec)


def resolve_device(spec: str, field: str = "device") -> torch.device:
    """The torch device ``spec`` names; ``auto`` and ``cuda`` take this process's GPU (its local rank's, see
    :func:`local_rank`, modulo the GPUs); without one ``auto`` is MPS (when available and :data:`MPS_READY`), else
    the CPU."""
    check_device(spec, field)
    if spec == "auto" and cuda_count() == 0:
        return torch.device("mps" if MPS_READY and mps_available() else "cpu")
    if spec in ("auto", "cuda"):
        return torch.device("cuda", local_rank() % cuda_count())
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
