"""The lean local-training loop that drives a LightningModule's own hooks.

No ``lightning.Trainer`` per client: building one costs about 2x a plain loop for a small
client. This loop calls ``configure_optimizers`` (every return form, with its LR scheduler; see
:mod:`fedbench.local_optim`) and ``training_step`` directly, Fabric style, on tensors indexed by
slices (no DataLoader on the hot path). ``self.log`` inside ``training_step`` /
``validation_step`` is collected (Lightning routes it to the module's ``_fabric`` when there is no
Trainer) and averaged over the steps. Buffers (BatchNorm running statistics) are set from, and
returned with, the flat parameter vector, so nothing leaks between clients through the one module.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from lightning import LightningModule
from torch import Tensor

from fedbench.errors import ConfigError
from fedbench.local_optim import configure, round_rates
from fedbench.params import flat_view, get_buffers, get_flat, set_buffers, set_flat

ExtraLoss = Callable[[Tensor], Tensor]


class LogSink:
    """Collects ``self.log`` values: per name, the sum and count (summed on the tensors' device)."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def log_dict(self, metrics: dict, step: int | None = None) -> None:
        for name, value in metrics.items():
            value = torch.as_tensor(value).detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict[str, float]:
        return {name: float(total) / self.counts[name] for name, total in self.sums.items()}


@contextmanager
def collecting_logs(task: LightningModule) -> Iterator[LogSink]:
    """Route the task's ``self.log`` into a :class:`LogSink` for the duration."""
    sink, before = LogSink(), task._fabric
    task._fabric = sink
    try:
        yield sink
    finally:
        task._fabric = before


@dataclass(frozen=True)
class LocalOutcome:
    """What :func:`train` returns: end parameters and buffers, steps, mean task loss, the mean
    learning rate over the steps (SCAFFOLD option II divides by the summed rates) and logged means."""

    params: Tensor
    buffers: Tensor | None
    steps: int
    loss: float
    lr: float
    logged: dict[str, float]


def batches(n: int, batch_size: int | None, epochs: int, generator: torch.Generator,
            device: torch.device | None = None) -> Iterator[tuple[int, Tensor | None]]:
    """(epoch, index tensor) of shuffled minibatches; ``None`` stands for the full batch (B = infinity). The order is
    drawn on the CPU (the same on every device) and moved to ``device`` once per epoch, not once per batch."""
    for epoch in range(epochs):
        if batch_size is None or batch_size >= n:
            yield epoch, None
            continue
        order = torch.randperm(n, generator=generator)
        if device is not None:
            order = order.to(device)  # no copy on the CPU
        for idx in order.split(batch_size):
            yield epoch, idx


def poisson_batches(n: int, batch_size: int | None, epochs: int, generator: torch.Generator,
                    device: torch.device | None = None) -> Iterator[tuple[int, Tensor | None]]:
    """(epoch, index tensor) of Poisson-sampled minibatches for DP-SGD, from opacus' ``UniformWithReplacementSampler``:
    each sample joins each step with probability ``q = B / n`` (1 for ``B`` = null or >= n: the full batch), and an
    epoch is ``int(1 / q)`` steps, as opacus' ``DPDataLoader``; batch sizes vary around ``B`` and may be 0."""
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    q = 1.0 if batch_size is None or batch_size >= n else batch_size / n
    sampler = UniformWithReplacementSampler(num_samples=n, sample_rate=q, generator=generator)
    for epoch in range(epochs):
        for indices in sampler:
            idx = torch.as_tensor(indices, dtype=torch.int64)
            yield epoch, idx if device is None else idx.to(device)


def load(task: LightningModule, params: Tensor, buffers: Tensor | None, listed: list[Tensor] | None = None) -> None:
    """Put a model (and its buffers, when it has any) into the shared module (``listed``: its parameters, if the
    caller has listed them already)."""
    set_flat(task if listed is None else listed, params)
    if buffers is not None:
        set_buffers(task, buffers)


def _loss(task: LightningModule, x: Tensor, y: Tensor, idx: Tensor | None, step: int, extra: ExtraLoss | None):
    batch = (x, y) if idx is None else (x[idx], y[idx])
    task_loss = task.training_step(batch, step)
    if isinstance(task_loss, dict):  # Lightning allows {"loss": ..., ...}
        task_loss = task_loss["loss"]
    total = task_loss if extra is None else task_loss + extra(flat_view(task))
    return task_loss, total


class FlatAlias:
    """The task's parameters made views of one flat tensor for a client's local training, so an algorithm's local
    loss term (FedProx, SCAFFOLD, FedDyn, FedADMM: a function of the flat parameter vector) reads them without a
    concatenation per step; its gradient is taken on that flat tensor and added to the parameters' gradients
    (the same sum the concatenated graph gave)."""

    def __init__(self, task: LightningModule) -> None:
        self.params = list(task.parameters())
        self.flat = get_flat(task)
        self.sizes = [p.numel() for p in self.params]
        for p, part in zip(self.params, self.flat.split(self.sizes)):
            p.data = part.view_as(p)

    def add_grad(self, extra: ExtraLoss) -> None:
        w = self.flat.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(extra(w), w)
        for p, part in zip(self.params, g.split(self.sizes)):
            if not p.requires_grad:
                continue
            if p.grad is None:
                p.grad = part.view_as(p).clone()
            else:
                p.grad.add_(part.view_as(p))


@dataclass(frozen=True)
class DPSGD:
    """Sample-level DP-SGD settings for one client's local training (opacus)."""

    clip: float
    noise_multiplier: float
    generator: torch.Generator


@contextmanager
def dp_sgd(task: LightningModule, optimizer: torch.optim.Optimizer, dp: DPSGD | None,
           batch_size: int) -> Iterator[torch.optim.Optimizer]:
    """The optimizer to step: with ``dp``, opacus' ``DPOptimizer`` over per-sample gradients from a
    ``GradSampleModule`` hooked on the task for the duration (hooks removed after)."""
    if dp is None:
        yield optimizer
        return
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    hooked = GradSampleModule(task, batch_first=True, loss_reduction="mean")
    try:
        with warnings.catch_warnings():  # the first layer's inputs need no gradient: expected, harmless
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            yield DPOptimizer(optimizer, noise_multiplier=dp.noise_multiplier, max_grad_norm=dp.clip,
                              expected_batch_size=batch_size, generator=dp.generator)
    finally:
        hooked._close()


def train(task: LightningModule, start: Tensor, x: Tensor, y: Tensor, *, epochs: int, batch_size: int | None,
          generator: torch.Generator, round_: int = 1, buffers: Tensor | None = None, max_steps: int | None = None,
          extra_loss: ExtraLoss | None = None, dp: DPSGD | None = None) -> LocalOutcome:
    """Run local training from ``start`` with the task's optimizer and scheduler (through DP-SGD with ``dp``)."""
    listed = list(task.parameters())  # once per client: each task.parameters() walks the module tree
    load(task, start, buffers, listed)
    task.train()
    alias = FlatAlias(task) if extra_loss is not None and dp is None else None
    plan = configure(task)
    if plan.scheduler is not None and plan.interval == "round":
        for group, lr in zip(plan.optimizer.param_groups, round_rates(task, round_)):
            group["lr"] = lr
    steps, loss_sum, rates, epoch_done, nonempty = 0, torch.zeros((), device=start.device), [], 0, 0
    b = len(y) if batch_size is None else min(batch_size, len(y))
    order = batches if dp is None else poisson_batches  # DP-SGD's accountant assumes Poisson batches
    with collecting_logs(task) as sink, dp_sgd(task, plan.optimizer, dp, b) as optimizer:
        for epoch, idx in order(len(y), batch_size, epochs, generator, x.device):
            if plan.scheduler is not None and plan.interval == "epoch" and epoch > epoch_done:
                epoch_done = epoch
                if epoch % plan.frequency == 0:
                    plan.scheduler.step()
            task_loss, total = _loss(task, x, y, idx, steps, None if alias else extra_loss)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if alias is not None:
                alias.add_grad(extra_loss)
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            steps += 1
            if idx is None or len(idx):  # an empty Poisson batch takes a noise-only step; its loss is not a number
                loss_sum += task_loss.detach()
                nonempty += 1
            if plan.scheduler is not None and plan.interval == "step" and steps % plan.frequency == 0:
                plan.scheduler.step()
            if max_steps is not None and steps >= max_steps:
                break
    # a constant rate is returned as is (a mean of equal floats can be off by one ulp)
    lr = rates[0] if len(set(rates)) == 1 else sum(rates) / max(len(rates), 1)
    return LocalOutcome(get_flat(listed), get_buffers(task), steps, float(loss_sum) / max(nonempty, 1), lr, sink.means())


def gradient(task: LightningModule, start: Tensor, x: Tensor, y: Tensor, *, batch_size: int | None,
             generator: torch.Generator, buffers: Tensor | None = None,
             extra_loss: ExtraLoss | None = None) -> tuple[Tensor, float]:
    """Gradient of the local loss at ``start`` on the first batch ``train`` would use; no step."""
    load(task, start, buffers)
    task.train()
    _, idx = next(batches(len(y), batch_size, 1, generator, x.device))
    with collecting_logs(task):
        task_loss, total = _loss(task, x, y, idx, 0, extra_loss)
    grads = torch.autograd.grad(total, list(task.parameters()))
    return torch.cat([g.reshape(-1) for g in grads]).detach(), float(task_loss.detach())


@torch.inference_mode()
def evaluate(task: LightningModule, params: Tensor, x: Tensor, y: Tensor, chunk: int = 4096,
             buffers: Tensor | None = None) -> tuple[float, float]:
    """(accuracy, mean loss) of ``params`` on ``(x, y)``, through the task's ``validation_step``,
    which returns the chunk's summed loss and correct count (``{"loss_sum", "correct"}``), and optionally
    ``count``, the number of scored targets (tokens of a sequence task; default: the chunk's samples)."""
    load(task, params, buffers)
    task.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=params.device)  # summed on the device, read once
    correct = torch.zeros((), dtype=torch.int64, device=params.device)
    count = torch.zeros((), dtype=torch.int64, device=params.device)
    with collecting_logs(task):
        for i, start in enumerate(range(0, len(y), chunk)):
            xb, yb = x[start : start + chunk].to(params.device), y[start : start + chunk].to(params.device)
            out = task.validation_step((xb, yb), i)
            if not isinstance(out, dict) or not {"loss_sum", "correct"} <= set(out):
                raise ConfigError("task.validation_step must return {'loss_sum': summed loss, 'correct': number "
                                  f"correct}} of its batch for fedbench's evaluation (got {type(out).__name__})")
            loss_sum += torch.as_tensor(out["loss_sum"]).to(loss_sum)
            correct += torch.as_tensor(out["correct"]).to(correct)
            count += torch.as_tensor(out.get("count", len(yb))).to(count)
    n = int(count)
    return (int(correct) / n, float(loss_sum) / n) if n else (float("nan"), float("nan"))
