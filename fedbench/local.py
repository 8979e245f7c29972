"""The lean local-training loop that drives a LightningModule's own hooks.

No ``lightning.Trainer`` per client: building one costs about 2x a plain loop for a small
client. This loop calls ``configure_optimizers`` and ``training_step`` directly, Fabric
style, on tensors indexed by slices (no DataLoader on the hot path).
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from lightning import LightningModule
from torch import Tensor

from fedbench.params import flat_view, get_flat, set_flat

ExtraLoss = Callable[[Tensor], Tensor]


def make_optimizer(task: LightningModule) -> torch.optim.Optimizer:
    """The first optimizer ``configure_optimizers`` returns (plain, list or dict form)."""
    opt = task.configure_optimizers()
    if isinstance(opt, (list, tuple)):
        opt = opt[0]
    if isinstance(opt, dict):
        opt = opt["optimizer"]
    return opt


def batches(n: int, batch_size: int | None, epochs: int, generator: torch.Generator) -> Iterator[Tensor | None]:
    """Index tensors of shuffled minibatches; ``None`` stands for the full batch (B = infinity)."""
    for _ in range(epochs):
        if batch_size is None or batch_size >= n:
            yield None
            continue
        order = torch.randperm(n, generator=generator)
        yield from order.split(batch_size)


def _loss(task: LightningModule, x: Tensor, y: Tensor, idx: Tensor | None, step: int, extra: ExtraLoss | None):
    batch = (x, y) if idx is None else (x[idx], y[idx])
    task_loss = task.training_step(batch, step)
    total = task_loss if extra is None else task_loss + extra(flat_view(task))
    return task_loss, total


def train(
    task: LightningModule,
    start: Tensor,
    x: Tensor,
    y: Tensor,
    *,
    epochs: int,
    batch_size: int | None,
    generator: torch.Generator,
    max_steps: int | None = None,
    extra_loss: ExtraLoss | None = None,
) -> tuple[Tensor, int, float]:
    """Run local SGD from ``start``; return (end params, steps taken, mean task loss)."""
    set_flat(task, start)
    task.train()
    opt = make_optimizer(task)
    steps, loss_sum = 0, torch.zeros(())
    for idx in batches(len(y), batch_size, epochs, generator):
        task_loss, total = _loss(task, x, y, idx, steps, extra_loss)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        steps += 1
        loss_sum += task_loss.detach()
        if max_steps is not None and steps >= max_steps:
            break
    return get_flat(task), steps, float(loss_sum) / max(steps, 1)


def gradient(
    task: LightningModule,
    start: Tensor,
    x: Tensor,
    y: Tensor,
    *,
    batch_size: int | None,
    generator: torch.Generator,
    extra_loss: ExtraLoss | None = None,
) -> tuple[Tensor, float]:
    """Gradient of the local loss at ``start`` on the first batch ``train`` would use; no step."""
    set_flat(task, start)
    task.train()
    idx = next(batches(len(y), batch_size, 1, generator))
    task_loss, total = _loss(task, x, y, idx, 0, extra_loss)
    grads = torch.autograd.grad(total, list(task.parameters()))
    return torch.cat([g.reshape(-1) for g in grads]).detach(), float(task_loss.detach())


@torch.inference_mode()
def evaluate(task: LightningModule, params: Tensor, x: Tensor, y: Tensor, chunk: int = 4096) -> tuple[float, float]:
    """(accuracy, mean loss) of ``params`` on ``(x, y)``, through the task's ``validation_step``."""
    set_flat(task, params)
    task.eval()
    loss_sum, correct = 0.0, 0
    for i, start in enumerate(range(0, len(y), chunk)):
        out = task.validation_step((x[start : start + chunk], y[start : start + chunk]), i)
        loss_sum += float(out["loss_sum"])
        correct += int(out["correct"])
    return correct / len(y), loss_sum / len(y)
