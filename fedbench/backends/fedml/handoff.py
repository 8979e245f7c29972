"""What fedbench hands FedML: the shared handoff (:mod:`fedbench.backends.handoff`: split, initial model as a
torch.fx trace, sampled clients, batch seeds) plus FedML's own YAML config, written to ``<run>/fedml/``;
``env/driver.py`` reads them inside FedML's environment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from omegaconf import DictConfig
from torch import nn

from fedbench.backends.fedml.translate import fedml_config
from fedbench.backends.handoff import DATA, MODEL, PLAN, TEST_BATCH, model_environment, remove_bulk, traced
from fedbench.backends.handoff import write as write_shared
from fedbench.data.base import FederatedData

CONFIG = "fedml_config.yaml"
__all__ = ["CONFIG", "DATA", "MODEL", "PLAN", "TEST_BATCH", "model_environment", "remove_bulk", "traced", "write"]


def write(handoff: Path, cfg: DictConfig, data: FederatedData, parts: list[np.ndarray], model: nn.Module,
          threads: int) -> None:
    """Write the handoff folder (replacing an earlier attempt's files) with FedML's config."""
    write_shared(handoff, cfg, data, parts, model, threads)
    config = fedml_config(cfg, str(handoff), cfg.batch_size or max(len(p) for p in parts))
    (handoff / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
