"""The classification task as a LightningModule.

fedbench's own local loop (``fedbench.local``) drives ``training_step`` and
``configure_optimizers`` for every client; ``lightning.Trainer`` fits the very same
module for the centralized and data-parallel baselines. ``conf/task/classifier.yaml`` builds it
with the ``model`` group's network and a partial optimizer (and scheduler), as
lightning-hydra-template's model configs do.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterable

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]
INTERVALS = ("step", "epoch", "round")


def _plain(factory: OptimizerFactory) -> OptimizerFactory:
    """A Hydra ``_partial_`` as a plain ``functools.partial`` of the same target and arguments: Hydra's partial
    re-validates its target policy (hashing it as JSON) on every call, about 0.5 ms per client, while the target
    was already checked when the config was instantiated."""
    if isinstance(factory, partial) and type(factory) is not partial:
        return partial(factory.func, *factory.args, **factory.keywords)
    return factory


class ClassifierTask(L.LightningModule):
    """Cross-entropy classification.

    Args:
        model: the network, from the ``model`` group (``fedbench.tasks.models``).
        optimizer: ``params -> Optimizer`` (a ``_partial_`` torch optimizer); default SGD, lr 0.1.
        scheduler: ``optimizer -> LR scheduler`` (``_partial_``) or None.
        scheduler_interval: when the scheduler steps: ``step`` (every local step), ``epoch`` (every
            local epoch; both restart each round, as the client builds a fresh optimizer) or
            ``round`` (once per communication round: round r trains with the rate after r - 1 steps).

    ``pipeline_loss``: the loss ``paradigm=pipeline`` computes on the last stage from the model's logits (a task
    that declares none cannot be pipelined).
    """

    pipeline_loss = staticmethod(F.cross_entropy)

    def __init__(self, model: nn.Module, optimizer: OptimizerFactory | None = None,
                 scheduler: SchedulerFactory | None = None, scheduler_interval: str = "round") -> None:
        super().__init__()
        from fedbench.errors import require_choice

        require_choice(scheduler_interval, "task.scheduler_interval", INTERVALS)
        self.model = model
        self.optimizer = _plain(optimizer) if optimizer is not None else partial(torch.optim.SGD, lr=0.1)
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        if self._trainer is not None:  # under lightning.Trainer (centralized baselines)
            self.log("train_loss", loss, prog_bar=True)
        return loss

    # declared: the loss is the mean cross-entropy of the model's logits (the vectorised backend's hand-derived
    # batched pass, fedbench.backends.batched_mlp, relies on it; a subclass overriding training_step does not inherit it)
    training_step.loss_of_model = "cross_entropy"  # type: ignore[attr-defined]

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

    def configure_optimizers(self) -> Any:
        opt = self.optimizer(self.parameters())
        if self.scheduler is None:
            return opt
        # under lightning.Trainer a "round" is an epoch (the baselines' rows are epochs)
        interval = "epoch" if self.scheduler_interval == "round" and self._trainer is not None else self.scheduler_interval
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.scheduler(opt), "interval": interval}}
