"""One client's job in a round: local work from the broadcast model, then its upload; and a client's personal model
for evaluation (:func:`personal_model`).

An algorithm with ``local_passes`` (Ditto, FedRep) composes its local work from passes of the lean loop through a
:class:`Trainer`; one that declares ``personalize`` builds each client's personal model with one (the fine-tuning
baseline trains there).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator

import torch
from lightning import LightningModule
from torch import Tensor

from fedbench import local
from fedbench.algorithms.base import Algorithm, LocalResult, State
from fedbench.errors import ConfigError
from fedbench.params import get_buffers
from fedbench.seeding import derive_seed, torch_generator


@dataclass(frozen=True)
class ClientPlan:
    """Local-training settings shared by every client and backend (epochs vary: see workload.py)."""

    batch_size: int | None
    seed: int
    lr: float
    dp: tuple[float, float] | None = None  # local DP-SGD: (clip, noise_multiplier)


def run_client(
    task: LightningModule,
    algorithm: Algorithm,
    plan: ClientPlan,
    data: tuple[Tensor, Tensor],
    server: State,
    client_state: State,
    client: int,
    round_: int,
    epochs: int,
    buffers: Tensor | None = None,
) -> LocalResult:
    """Train (or take a gradient for) ``client`` in ``round_`` from the server model and ``buffers``;
    all randomness keyed by (seed, round, client)."""
    x, y = data
    gen = torch_generator(plan.seed, round_, client, "batches")
    seed_model_randomness(derive_seed(plan.seed, round_, client, "local"), x.device)
    extra = None if algorithm.local_loss is None else partial(_extra, algorithm, server, client_state)
    t0 = time.perf_counter()
    start_grad = None
    if algorithm.start_gradient:  # e.g. SCAFFOLD option I: full local gradient at the server model
        start_grad, _ = local.gradient(task, server["params"], x, y, batch_size=None, generator=gen, buffers=buffers)
    # e.g. q-FedAvg: F_k(w^t), the loss on all local data at the server model (a forward pass, no random draw)
    start_loss = local.evaluate(task, server["params"], x, y, buffers=buffers)[1] if algorithm.start_loss else None
    if algorithm.work == "gradient":
        grad, loss = local.gradient(task, server["params"], x, y, batch_size=plan.batch_size, generator=gen,
                                    buffers=buffers, extra_loss=extra)
        return LocalResult(client, server["params"], len(y), 1, loss, time.perf_counter() - t0, plan.lr, grad,
                           get_buffers(task), start_loss=start_loss)
    # opacus draws DP-SGD's noise on the parameters' device with this generator (a GPU's draws differ from a CPU's)
    dp = None if plan.dp is None else local.DPSGD(*plan.dp, torch_generator(plan.seed, round_, client, "dp-sgd",
                                                                            device=x.device))
    trainer = Trainer(task, plan, data, client, round_, epochs, buffers, algorithm.max_local_steps, gen, dp)
    personal: dict[str, Tensor] = {}
    if algorithm.local_passes is None:
        out = trainer.run(server["params"], extra=extra)
    else:  # the algorithm's own passes (Ditto's global and personal updates, FedRep's head then body)
        out, personal = algorithm.local_passes(trainer, server, client_state)
    return LocalResult(client, out.params, len(y), trainer.steps, out.loss, time.perf_counter() - t0,
                       out.lr if out.steps else plan.lr, start_grad, out.buffers, out.logged, personal, start_loss)


class Trainer:
    """Passes of local training for one client and round (an algorithm's ``local_passes`` and ``personalize`` call
    :meth:`run`); counts the steps of all of them.

    Args:
        gen: the batch generator of the default pass (purpose ``batches``: the plain pass's draws exactly); other
            purposes draw from their own (seed, round, client, purpose) generator.
    """

    def __init__(self, task: LightningModule, plan: ClientPlan, data: tuple[Tensor, Tensor], client: int, round_: int,
                 epochs: int, buffers: Tensor | None, max_steps: int | None, gen: torch.Generator | None = None,
                 dp: local.DPSGD | None = None, purpose: str = "batches") -> None:
        self.task, self.plan, self.data, self.client, self.round = task, plan, data, client, round_
        self.epochs, self.buffers, self.max_steps, self.gen, self.dp, self.purpose = epochs, buffers, max_steps, gen, dp, purpose
        self.steps = 0

    def run(self, start: Tensor, *, epochs: int | None = None, train: slice | None = None,
            extra: Callable[[Tensor], Tensor] | None = None, purpose: str | None = None) -> local.LocalOutcome:
        """Local training from ``start`` for ``epochs`` (default: the round's), only the flat positions ``train``
        (None: all; the others frozen), with an ``extra(flat params)`` loss term; DP-SGD only in the default pass."""
        purpose = purpose or self.purpose
        default = purpose == "batches" and self.gen is not None
        gen = self.gen if default else torch_generator(self.plan.seed, self.round, self.client, purpose)
        x, y = self.data
        with frozen_outside(self.task, train):
            out = local.train(self.task, start, x, y, epochs=self.epochs if epochs is None else epochs,
                              batch_size=self.plan.batch_size, generator=gen, round_=self.round, buffers=self.buffers,
                              max_steps=self.max_steps, extra_loss=extra, dp=self.dp if default else None)
        self.steps += out.steps
        return out

    def head(self, layers: int) -> slice:
        """The flat positions of the model's last ``layers`` modules with parameters (its head: the tail of the flat
        vector); the rest is the body."""
        named = list(self.task.named_parameters())
        modules = list(dict.fromkeys(name.rsplit(".", 1)[0] for name, _ in named))
        if not 1 <= layers < len(modules):
            raise ConfigError(f"algorithm.head_layers must be in [1, {len(modules) - 1}] for this model (its "
                              f"{len(modules)} modules with parameters: {modules}) (got {layers})")
        head = set(modules[-layers:])
        size = sum(p.numel() for name, p in named if name.rsplit(".", 1)[0] in head)
        total = sum(p.numel() for _, p in named)
        return slice(total - size, total)


@contextmanager
def frozen_outside(task: LightningModule, train: slice | None) -> Iterator[None]:
    """Parameters outside the flat positions ``train`` do not train for the duration (no gradient: SGD, momentum and
    weight decay skip them); ``train`` must not split a parameter tensor."""
    if train is None:  # the common case: nothing to freeze (no walk over the parameters)
        yield
        return
    params, frozen, offset = list(task.parameters()), [], 0
    lo, hi, _ = train.indices(sum(p.numel() for p in params))
    for p in params:
        end = offset + p.numel()
        if lo < end and offset < hi and not (lo <= offset and end <= hi):
            raise ValueError(f"train={train} splits a parameter tensor ({offset}:{end})")
        if not (lo <= offset and end <= hi) and p.requires_grad:
            p.requires_grad_(False)
            frozen.append(p)
        offset = end
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def personal_model(task: LightningModule, algorithm: Algorithm, plan: ClientPlan, data: tuple[Tensor, Tensor],
                   server: State, client_state: State, client: int, round_: int, epochs: int,
                   buffers: Tensor | None = None) -> Tensor:
    """``client``'s personal model in round ``round_``: the algorithm's ``personalize`` (its personal model or head
    from the client state, or the global model fine-tuned on the client's training data), else the global model."""
    if algorithm.personalize is None:
        return server["params"]
    seed_model_randomness(derive_seed(plan.seed, round_, client, "personalize"), data[0].device)
    trainer = Trainer(task, plan, data, client, round_, epochs, buffers, algorithm.max_local_steps,
                      purpose="personalize")
    return algorithm.personalize(server, client_state, trainer)


def seed_model_randomness(seed: int, device: torch.device) -> None:
    """Seed the global generators a model's own randomness (dropout & co.) draws from: the CPU's, and the GPU's on a
    CUDA device. Not ``torch.manual_seed``, which also queues seeding for every accelerator type torch knows (CUDA,
    XPU, MTIA) and records a stack trace for each: about 0.8 ms per client, 5-10% of a small client's work."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


def _extra(algorithm: Algorithm, server: State, client_state: State, flat: Tensor) -> torch.Tensor:
    return algorithm.local_loss(flat, server, client_state)
