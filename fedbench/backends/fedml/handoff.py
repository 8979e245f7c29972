"""What fedbench hands FedML: the run's split, initial model, sampled clients and FedML's config, written
to ``<run>/fedml/`` in formats that load without fedbench (numpy ``.npz``, a torch.fx-traced module,
JSON, FedML's YAML); ``env/driver.py`` reads them inside FedML's environment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import yaml
from omegaconf import DictConfig
from torch import nn

from fedbench.backends.fedml.translate import fedml_config
from fedbench.data.base import FederatedData
from fedbench.errors import ConfigError
from fedbench.sampling import sample_clients

TEST_BATCH = 1024
DATA, MODEL, PLAN, CONFIG = "data.npz", "model.pt", "plan.json", "fedml_config.yaml"


def traced(model: nn.Module) -> nn.Module:
    """The model as a torch.fx GraphModule: the same parameters and initial values, code that unpickles
    with torch alone. Models with data-dependent control flow cannot be traced and are refused."""
    try:
        return torch.fx.symbolic_trace(model)
    except Exception as err:  # torch.fx raises TraceError, TypeError, ... for untraceable code
        raise ConfigError(f"model: backend=fedml hands the model to FedML as a torch.fx trace, and "
                          f"{type(model).__name__} cannot be traced ({type(err).__name__}: {err})") from None


def write(handoff: Path, cfg: DictConfig, data: FederatedData, parts: list[np.ndarray], model: nn.Module,
          threads: int) -> None:
    """Write the handoff folder (replacing an earlier attempt's files)."""
    handoff.mkdir(parents=True, exist_ok=True)
    for stale in ("rounds.jsonl", "started", "finished"):
        (handoff / stale).unlink(missing_ok=True)
    sizes = [len(p) for p in parts]
    np.savez(handoff / DATA, x_train=data.x_train.numpy(), y_train=data.y_train.numpy(),
             x_test=data.x_test.numpy(), y_test=data.y_test.numpy(),
             index=np.concatenate(parts).astype(np.int64), offsets=np.cumsum([0, *sizes[:-1]]).astype(np.int64))
    torch.save(traced(model), handoff / MODEL)
    sampled = [sample_clients(cfg.num_clients, cfg.client_fraction, cfg.seed, r) for r in range(1, cfg.rounds + 1)]
    plan = {"batch_size": cfg.batch_size, "test_batch_size": TEST_BATCH, "seed": int(cfg.seed),
            "num_classes": data.num_classes, "threads": threads, "sampled": sampled}
    (handoff / PLAN).write_text(json.dumps(plan) + "\n")
    config = fedml_config(cfg, str(handoff), cfg.batch_size or max(sizes))
    (handoff / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))


def remove_bulk(handoff: Path) -> None:
    """Drop the data and model copies once FedML is done (the run folder keeps config, plan and log)."""
    for name in (DATA, MODEL):
        (handoff / name).unlink(missing_ok=True)
