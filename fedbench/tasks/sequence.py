"""Next-token classification as a LightningModule (``task=sequence``).

For language models trained on sequences (LEAF/TFF Shakespeare, Reddi et al. 2021's next-character task): the
model gives logits per position, ``(N, T, vocabulary)``, or for the last position only, ``(N, vocabulary)``; the
targets are per position, ``(N, T)``, or one per sequence, ``(N,)`` (then the last position's logits are scored).
Padded target positions hold -100 (:data:`fedbench.data.text.IGNORE`, PyTorch's ``ignore_index``) and count
nowhere: the loss is the mean cross-entropy over real tokens, and evaluation reports **token accuracy** (correct
tokens / real tokens) as ``test_accuracy`` and the mean loss per real token as ``test_loss``, through the
``count`` key of ``validation_step`` (the number of scored targets of the batch). The optimizer and scheduler
options are :class:`~fedbench.tasks.classifier.ClassifierTask`'s.

Works with every algorithm, compressor, aggregator, topology and backend that the classifier works with; with
``model=char_lstm``, ``privacy=local_dp`` is refused (opacus cannot compute per-sample gradients of ``nn.LSTM``).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from fedbench.data.text import IGNORE
from fedbench.errors import ConfigError
from fedbench.tasks.classifier import ClassifierTask


class SequenceTask(ClassifierTask):
    """Padding-aware next-token cross-entropy and token accuracy (see the module docstring)."""

    def _scored(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """Logits ``(M, vocabulary)`` and targets ``(M,)`` of the batch's scored positions (padding included)."""
        x, y = batch
        logits = self.model(x)
        if logits.ndim == 3 and y.ndim == 1:
            logits = logits[:, -1]
        if logits.ndim != y.ndim + 1:
            raise ConfigError(f"task=sequence: the model's logits have shape {tuple(logits.shape)} for targets of shape "
                              f"{tuple(y.shape)}; per-position targets (dataset.targets=sequence) need logits at every "
                              "position (model.all_positions=true)")
        return logits.reshape(-1, logits.shape[-1]), y.reshape(-1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        logits, y = self._scored(batch)
        loss = F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum") / (y != IGNORE).sum().clamp(min=1)
        if self._trainer is not None:
            self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Any]:
        """Summed loss, correct tokens and real tokens (``count``) of the batch."""
        logits, y = self._scored(batch)
        real = y != IGNORE
        out = {"loss_sum": F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum"),
               "correct": ((logits.argmax(dim=-1) == y) & real).sum(), "count": real.sum()}
        if self._trainer is not None:
            n = out["count"].clamp(min=1)
            self.log("val_loss", out["loss_sum"] / n)
            self.log("val_accuracy", out["correct"].float() / n, prog_bar=True)
        return out
