"""A LightningModule written the way a Lightning user writes one (not fedbench's ClassifierTask):
its own optimizer and StepLR in the ``([optimizers], [schedulers])`` form, ``self.log`` in
``training_step``, and the evaluation contract ``validation_step -> {"loss_sum", "correct"}``."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


class UserTask(L.LightningModule):
    def __init__(self, model: nn.Module, lr: float = 0.5, gamma: float = 0.5) -> None:
        super().__init__()
        self.model, self.lr, self.gamma = model, lr, gamma

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        self.log("train_acc", (logits.argmax(1) == y).float().mean())
        self.log("batch_size_seen", float(len(y)))
        return F.cross_entropy(logits, y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        self.log("val_seen", float(len(y)))
        return {"loss_sum": F.cross_entropy(logits, y, reduction="sum"), "correct": (logits.argmax(1) == y).sum()}

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=self.gamma)]


class BranchingTask(UserTask):
    """A training_step with a data-dependent Python branch (``.item()``): fine in a loop, not under vmap."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        return loss * 0.5 if loss.item() > 100 else loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)
