"""Vectorised clients: a chunk of clients trains at once with ``torch.func`` on stacked parameters.

``backend=vectorized`` keeps one (k, P) tensor of the chunk's k models. At each local step the clients that
still have a batch are grouped by batch size (the last batch of an epoch is smaller, clients of unequal
sizes run out of steps at different times) and each group takes one ``vmap(grad(loss))`` call:
``functional_call`` runs the task's own ``training_step`` (the LightningModule still defines model and
loss) on each client's batch, plus the algorithm's local loss term (FedProx's proximal term, SCAFFOLD's
correction, FedDyn, FedADMM) on that client's state. The SGD step (momentum, weight decay, as
``torch.optim.SGD``) is applied to the group's rows. Every client draws exactly the batches it draws in
the sequential loop (the same (seed, round, client) generator), so the numbers equal ``backend=inprocess``
up to float rounding (tested to 1e-5). A fully connected ReLU network under cross-entropy with no local loss term
(FedAvg on McMahan et al.'s 2NN, softmax regression) takes a hand-derived batched pass instead of ``vmap``
(:mod:`fedbench.backends.batched_mlp`, about 2x faster on the CPU) and clients of equal sizes gather their batches
once per round. That pass computes each product and update as the sequential loop's autograd and
``torch.optim.SGD`` do, so with plain SGD its models equal ``backend=inprocess`` bit for bit (tested);
``fused_sgd=true`` folds the update into the gradient's product instead, faster and rounded differently.

A task qualifies when its ``configure_optimizers`` returns plain SGD (one param group, no Nesterov, no
dampening) with no scheduler or an ``interval="round"`` one, its model has no buffers (BatchNorm) and no
dropout (per-client random masks would not match the sequential run), and its ``training_step`` works under
``vmap`` (pure tensor code: no ``.item()``, no data-dependent Python branches). Anything else is refused
with the reason before the first round. The task's ``self.log`` values are not recorded (they would be
batched tensors); the train loss column is.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

from fedbench.algorithms.base import LocalResult, State
from fedbench.backends.base import Backend, BackendCapabilities, declares
from fedbench.backends.batched_mlp import linear_relu_chain
from fedbench.errors import ConfigError, require
from fedbench.backends.vectorized_chunk import _grads, _named, _no_logging, sgd_settings, train_chunk
from fedbench.validate import is_int


CAPABILITIES = BackendCapabilities(devices=("cpu", "cuda"), vectorizes=True)


@declares(CAPABILITIES)
def vectorized(chunk: int | str = "auto", memory_fraction: float = 0.25, threads: int | None = None,
               fused_sgd: bool = False) -> Backend:
    """Clients trained ``chunk`` at a time with ``torch.func.vmap``.

    Args:
        chunk: clients per vectorised call; ``auto`` fits as many as ``memory_fraction`` of the free memory
            (of the GPU with a CUDA device) holds (parameters, gradients and momentum per client, plus batches),
            on the CPU at most :data:`CPU_CHUNK_PARAMS` stacked parameters (:data:`FAST_CPU_CHUNK_PARAMS` on the
            hand-derived fast path), in chunks of equal size.
        memory_fraction: the share of free memory ``auto`` may plan for.
        threads: torch intra-op threads (null: the CPUs this process may use); applied by ``run``.
        fused_sgd: on the hand-derived pass with plain SGD, fold the update into the gradient's matrix product:
            less training time, rounded differently from ``backend=inprocess`` (false: bit-identical to it).
    """
    require(chunk == "auto" or (is_int(chunk) and chunk >= 1), "backend.chunk", "auto or an integer >= 1", chunk)
    require(isinstance(memory_fraction, (int, float)) and 0 < memory_fraction <= 1, "backend.memory_fraction",
            "in (0, 1]", memory_fraction)
    require(isinstance(fused_sgd, bool), "backend.fused_sgd", "true or false", fused_sgd)
    times: list = []

    def run_map(job: Callable, clients: Sequence[int]) -> list:
        t0 = time.perf_counter()
        results = [job(c) for c in clients]
        times[:] = [{"rank": 0, "compute_s": time.perf_counter() - t0, "wait_s": 0.0, "comm_s": 0.0}]
        return results

    def train_many(exp: Any, epochs: dict[int, int], r: int, clients: Sequence[int], start: Callable[[int], State],
                   states: dict[int, State]) -> list[LocalResult]:
        t0 = time.perf_counter()
        size = chunk if chunk != "auto" else equal_chunks(len(clients), _fits(exp, memory_fraction, exp.device))
        out: dict[int, LocalResult] = {}
        sgd = sgd_settings(exp.task)
        for i in range(0, len(clients), size):
            part = list(clients[i:i + size])
            out.update({res.client: res for res in train_chunk(exp, epochs, r, part, start, states, sgd,
                                                               fuse_sgd=fused_sgd)})
        times[:] = [{"rank": 0, "compute_s": time.perf_counter() - t0, "wait_s": 0.0, "comm_s": 0.0}]
        return [out[c] for c in clients]

    return Backend("vectorized", run_map, rank_times=times, train_many=train_many, check=check,
                   capabilities=CAPABILITIES)


def check(exp: Any) -> None:
    """Refuse, naming why, what cannot be vectorised identically (called by ``build`` before any round)."""
    alg, task = exp.algorithm, exp.task
    name = f"backend=vectorized: algorithm {alg.name}"
    if alg.work != "train" or alg.max_local_steps is not None:
        raise ConfigError(f"{name} takes one gradient per client, not local SGD epochs; use backend=inprocess")
    if alg.local_passes is not None:
        raise ConfigError(f"{name} declares local_passes (its own passes of local training), which the vectorised "
                          "chunk does not run; use backend=inprocess")
    if exp.plan.dp is not None:
        raise ConfigError("backend=vectorized: local DP-SGD (privacy=local_dp) clips per-sample gradients through "
                          "opacus, which is not vectorised here; use backend=inprocess")
    if exp.local_buffers or any(True for _ in task.buffers()):
        raise ConfigError(f"backend=vectorized: the model {type(task.model).__name__} has buffers (e.g. BatchNorm "
                          "statistics updated in train mode), which vmap cannot update per client; use backend=inprocess")
    dropout = [type(m).__name__ for m in task.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    if dropout:
        raise ConfigError(f"backend=vectorized: the model has {dropout[0]}, whose random masks would differ from the "
                          "sequential run's; use backend=inprocess")
    sgd_settings(task)
    # a trial step on two copies of the first client's first batch: the training_step must work under vmap
    x, y = exp.client_data[0]
    b = len(y) if exp.plan.batch_size is None else min(exp.plan.batch_size, len(y))
    params = {k: v.detach().unsqueeze(0).expand(2, *v.shape).clone() for k, v in _named(task).items()}
    try:
        with _no_logging(task):
            _grads(task, None, None, True)(params, x[:b].expand(2, *x[:b].shape), y[:b].expand(2, *y[:b].shape), {})
    except Exception as err:  # the reason vmap gives (e.g. .item() on a batched tensor)
        raise ConfigError(f"backend=vectorized: the task's training_step cannot run under torch.func.vmap "
                          f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); make it pure "
                          "tensor code or use backend=inprocess") from None


def equal_chunks(n: int, most: int) -> int:
    """The chunk size that splits ``n`` clients into the fewest chunks of at most ``most``, as equal as possible
    (60 clients, at most 50: 30 + 30, not 50 + 10)."""
    most = max(1, min(n, most))
    return math.ceil(n / math.ceil(n / most))


# On the CPU a chunk's stacked models beyond ~10M parameters lose to cache misses what they gain in calls. Measured
# here (MNIST 2NN, 200k parameters, 100 clients of 60 samples per round, one thread) through torch.func: 100 clients
# per call 0.45 s a round, 50: 0.36 s, 25: 0.37 s, 10: 0.42 s; the sequential loop 0.48 s. The hand-derived pass
# (fedbench.backends.batched_mlp) is fastest in small chunks: 5 or 10 clients 0.145 s a round, 20: 0.21 s, 50: 0.25 s
# (the sequential loop 0.27 s), so its cap is 2M stacked parameters (10 clients of the 2NN).
CPU_CHUNK_PARAMS = 10_000_000
FAST_CPU_CHUNK_PARAMS = 2_000_000


def _fits(exp: Any, fraction: float, device: torch.device | None = None) -> int:
    """Clients whose parameters, gradients, momentum and batch activations fit ``fraction`` of free memory
    (the GPU's with a CUDA device); on the CPU also at most ``CPU_CHUNK_PARAMS`` stacked parameters."""
    p = sum(v.numel() for v in exp.task.parameters())
    x = exp.client_data[0][0]
    b = exp.plan.batch_size or max(len(d[1]) for d in exp.client_data)
    per_client = 4 * (4 * p + 4 * b * max(x[0].numel(), 1))
    if device is not None and device.type == "cuda":
        return max(1, math.floor(fraction * torch.cuda.mem_get_info(device)[0] / per_client))
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 64
    fast = exp.algorithm.local_loss is None and linear_relu_chain(exp.task) is not None
    cap = (FAST_CPU_CHUNK_PARAMS if fast else CPU_CHUNK_PARAMS) // max(p, 1)
    return max(1, min(math.floor(fraction * free / per_client), cap))
