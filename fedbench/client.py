"""One client's job in a round: local work from the broadcast model, then its upload."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import torch
from lightning import LightningModule
from torch import Tensor

from fedbench import local
from fedbench.algorithms.base import Algorithm, LocalResult, State
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
                           get_buffers(task))
    # opacus draws DP-SGD's noise on the parameters' device with this generator (a GPU's draws differ from a CPU's)
    dp = None if plan.dp is None else local.DPSGD(*plan.dp, torch_generator(plan.seed, round_, client, "dp-sgd",
                                                                            device=x.device))
    out = local.train(task, server["params"], x, y, epochs=epochs, batch_size=plan.batch_size, generator=gen,
                      round_=round_, buffers=buffers, max_steps=algorithm.max_local_steps, extra_loss=extra, dp=dp)
    return LocalResult(client, out.params, len(y), out.steps, out.loss, time.perf_counter() - t0,
                       out.lr if out.steps else plan.lr, start_grad, out.buffers, out.logged, start_loss)


def seed_model_randomness(seed: int, device: torch.device) -> None:
    """Seed the global generators a model's own randomness (dropout & co.) draws from: the CPU's, and the GPU's on a
    CUDA device. Not ``torch.manual_seed``, which also queues seeding for every accelerator type torch knows (CUDA,
    XPU, MTIA) and records a stack trace for each: about 0.8 ms per client, 5-10% of a small client's work."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


def _extra(algorithm: Algorithm, server: State, client_state: State, flat: Tensor) -> torch.Tensor:
    return algorithm.local_loss(flat, server, client_state)
