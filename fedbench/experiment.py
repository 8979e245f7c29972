"""The record a round loop works on: everything ``build`` instantiated for one run, built once.

It sits below the stages, backends and topologies that read it, and above the parts it holds, so nothing needs
to import ``build`` (which constructs it) to know its shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from lightning import LightningModule

from fedbench.aggregators import mean
from fedbench.algorithms.base import Algorithm
from fedbench.backends.base import Backend
from fedbench.client import ClientPlan
from fedbench.client_eval import ClientEval
from fedbench.compress.channel import Channel
from fedbench.data.base import FederatedData
from fedbench.network import Network
from fedbench.threat_model import ThreatModel


@dataclass(frozen=True)
class Experiment:
    """Everything a round loop needs, built once."""

    data: FederatedData
    parts: list[np.ndarray]
    client_data: list[tuple[torch.Tensor, torch.Tensor]]
    task: LightningModule
    algorithm: Algorithm
    backend: Backend
    plan: ClientPlan
    network: Network
    speeds: list[float]
    local_buffers: bool = False
    topology: Any = None
    step_time_s: float | None = None
    channel: Channel | None = None  # None without compression
    threat: ThreatModel = ThreatModel(mean())  # aggregator, attack, dropout, privacy
    device: torch.device = torch.device("cpu")  # where the task, client and test data, server and client states live
    sampling: str = "fixed"  # client_sampling, resolved: fixed | poisson (fedbench.sampling)
    client_eval: ClientEval | None = None  # per-client evaluation (fedbench.client_eval), None when off
    timings: dict = field(default_factory=dict)  # build's phases in seconds (data_s, build_s), for summary.json
