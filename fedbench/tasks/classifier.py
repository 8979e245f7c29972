"""The classification task as a LightningModule.

fedbench's own local loop (``fedbench.local``) drives ``training_step`` and
``configure_optimizers`` for every client; ``lightning.Trainer`` can fit the very same
module for centralized baselines.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ClassifierTask(L.LightningModule):
    """Cross-entropy classification with a plain SGD local optimizer.

    Args:
        model: the network, from ``fedbench.tasks.models``.
        lr: local (client) learning rate.
        momentum: local SGD momentum (0 in the FedAvg paper).
        weight_decay: local L2 penalty.
    """

    def __init__(self, model: nn.Module, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        if self._trainer is not None:  # under lightning.Trainer (centralized baselines)
            self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """Summed loss and correct count of the batch (sums, so batches of any size combine exactly)."""
        x, y = batch
        logits = self.model(x)
        out = {
            "loss_sum": F.cross_entropy(logits, y, reduction="sum"),
            "correct": (logits.argmax(dim=1) == y).sum(),
        }
        if self._trainer is not None:
            self.log("val_loss", out["loss_sum"] / len(y))
            self.log("val_accuracy", out["correct"].float() / len(y), prog_bar=True)
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
