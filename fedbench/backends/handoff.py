"""What fedbench hands another framework's simulator (``backend=fedml``, ``backend=flower``): the run's data and
split, initial model, sampled clients and per-(round, client) batch seeds, written to a folder in formats that load
without fedbench (numpy ``.npz``, a torch.fx-traced module, JSON); each backend's ``env/driver.py`` reads them inside
that framework's isolated environment.

  data.npz   x_train, y_train, x_test, y_test, and each client's training indices (``index`` concatenated,
             ``offsets`` where each client starts)
  model.pt   the initial model, traced with torch.fx so that it unpickles with torch alone; the driver unpickles it
             only if its SHA-256 is the one this process passes in ``$FEDBENCH_MODEL_SHA256`` (:mod:`.handoff_model`)
  plan.json  batch sizes, seed, classes, threads, ``sampled`` (the clients of each round, as fedbench samples
             them) and ``batch_seeds`` (round -> client -> the seed of fedbench's minibatch generator for that
             client in that round, ``derive_seed(seed, round, client, "batches")``), plus a backend's own entries
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from fedbench.backends import handoff_model
from fedbench.data.base import FederatedData
from fedbench.errors import ConfigError
from fedbench.sampling import sample_clients
from fedbench.seeding import derive_seed

TEST_BATCH = 1024
DATA, MODEL, PLAN = "data.npz", "model.pt", "plan.json"
_WRITTEN: dict[str, str] = {}  # handoff folder -> the sha256 of the model.pt this process wrote there
STALE = ("rounds.jsonl", "started", "finished")


def traced(model: nn.Module, backend: str = "backend=fedml") -> nn.Module:
    """The model as a torch.fx GraphModule: the same parameters and initial values, code that unpickles
    with torch alone. Models with data-dependent control flow cannot be traced and are refused."""
    try:
        return torch.fx.symbolic_trace(model)
    except Exception as err:  # torch.fx raises TraceError, TypeError, ... for untraceable code
        raise ConfigError(f"model: {backend} hands the model over as a torch.fx trace, and "
                          f"{type(model).__name__} cannot be traced ({type(err).__name__}: {err})") from None


def sampled_and_seeds(cfg: DictConfig) -> tuple[list[list[int]], dict[str, dict[str, int]]]:
    """The clients fedbench samples in each round and each one's minibatch seed in that round."""
    sampled = [sample_clients(cfg.num_clients, cfg.client_fraction, cfg.seed, r) for r in range(1, cfg.rounds + 1)]
    seeds = {str(r): {str(c): derive_seed(cfg.seed, r, c, "batches") for c in clients}
             for r, clients in enumerate(sampled, start=1)}
    return sampled, seeds


def write(folder: Path, cfg: DictConfig, data: FederatedData, parts: list[np.ndarray], model: nn.Module,
          threads: int, backend: str = "backend=fedml", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the handoff folder (replacing an earlier attempt's files); returns the plan."""
    model = traced(model, backend)  # before anything is written: an untraceable model leaves no folder
    folder.mkdir(parents=True, exist_ok=True)
    for stale in STALE:
        (folder / stale).unlink(missing_ok=True)
    sizes = [len(p) for p in parts]
    np.savez(folder / DATA, x_train=data.x_train.numpy(), y_train=data.y_train.numpy(),
             x_test=data.x_test.numpy(), y_test=data.y_test.numpy(),
             index=np.concatenate(parts).astype(np.int64), offsets=np.cumsum([0, *sizes[:-1]]).astype(np.int64))
    torch.save(model, folder / MODEL)
    _WRITTEN[str(folder.resolve())] = handoff_model.sha256(folder / MODEL)
    sampled, seeds = sampled_and_seeds(cfg)
    plan = {"batch_size": cfg.batch_size, "test_batch_size": TEST_BATCH, "seed": int(cfg.seed),
            "num_classes": data.num_classes, "threads": threads, "sampled": sampled, "batch_seeds": seeds,
            **(extra or {})}
    (folder / PLAN).write_text(json.dumps(plan) + "\n")
    return plan


def model_environment(folder: Path) -> dict[str, str]:
    """The driver's ``$FEDBENCH_MODEL_SHA256``: the hash of the model this process wrote into ``folder``
    (:mod:`fedbench.backends.handoff_model`); kept in memory, never read back from the folder."""
    return {handoff_model.ENV: _WRITTEN[str(folder.resolve())]}


def remove_bulk(folder: Path) -> None:
    """Drop the data and model copies once the framework is done (the run folder keeps config, plan and log)."""
    for name in (DATA, MODEL):
        (folder / name).unlink(missing_ok=True)
