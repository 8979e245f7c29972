"""Vectorised clients: a chunk of clients trains at once with ``torch.func`` on stacked parameters.

``backend=vectorized`` keeps one (k, P) tensor of the chunk's k models. At each local step the clients that
still have a batch are grouped by batch size (the last batch of an epoch is smaller, clients of unequal
sizes run out of steps at different times) and each group takes one ``vmap(grad(loss))`` call:
``functional_call`` runs the task's own ``training_step`` (the LightningModule still defines model and
loss) on each client's batch, plus the algorithm's local loss term (FedProx's proximal term, SCAFFOLD's
correction, FedDyn, FedADMM) on that client's state. The SGD step (momentum, weight decay, as
``torch.optim.SGD``) is applied to the group's rows. Every client draws exactly the batches it draws in
the sequential loop (the same (seed, round, client) generator), so the numbers equal ``backend=inprocess``
up to float rounding (tested to 1e-5).

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
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from fedbench.algorithms.base import LocalResult, State
from fedbench.backends import Backend, BackendCapabilities, declares
from fedbench.errors import ConfigError, require
from fedbench.local import batches, gradient
from fedbench.local_optim import configure, round_rates
from fedbench.seeding import torch_generator
from fedbench.validate import is_int


class _Discard:
    """Stands in for Lightning's logger while vmapped: ``self.log`` values are batched tensors, not recorded."""

    def log_dict(self, metrics: dict, step: int | None = None) -> None:
        return None


@contextmanager
def _no_logging(task: nn.Module) -> Iterator[None]:
    before, task._fabric = task._fabric, _Discard()
    try:
        yield
    finally:
        task._fabric = before


class _Step(nn.Module):
    """``forward(x, y)`` = the task's ``training_step((x, y), 0)``, so ``functional_call`` can run it."""

    def __init__(self, task: nn.Module) -> None:
        super().__init__()
        self.task = task

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        loss = self.task.training_step((x, y), 0)
        return loss["loss"] if isinstance(loss, dict) else loss


CAPABILITIES = BackendCapabilities(devices=("cpu", "cuda"), vectorizes=True)


@declares(CAPABILITIES)
def vectorized(chunk: int | str = "auto", memory_fraction: float = 0.25, threads: int | None = None) -> Backend:
    """Clients trained ``chunk`` at a time with ``torch.func.vmap``.

    Args:
        chunk: clients per vectorised call; ``auto`` fits as many as ``memory_fraction`` of the free memory
            (of the GPU with a CUDA device) holds (parameters, gradients and momentum per client, plus batches),
            on the CPU at most :data:`CPU_CHUNK_PARAMS` stacked parameters, in chunks of equal size.
        memory_fraction: the share of free memory ``auto`` may plan for.
        threads: torch intra-op threads (null: the CPUs this process may use); applied by ``run``.
    """
    require(chunk == "auto" or (is_int(chunk) and chunk >= 1), "backend.chunk", "auto or an integer >= 1", chunk)
    require(isinstance(memory_fraction, (int, float)) and 0 < memory_fraction <= 1, "backend.memory_fraction",
            "in (0, 1]", memory_fraction)
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
        for i in range(0, len(clients), size):
            part = list(clients[i:i + size])
            out.update({res.client: res for res in train_chunk(exp, epochs, r, part, start, states)})
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
    _sgd(task)
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


def _sgd(task: nn.Module) -> dict[str, Any]:
    """The task's SGD settings (and whether a round scheduler sets the rate); anything but plain SGD with one
    param group is refused."""
    plan = configure(task)
    opt = plan.optimizer
    if type(opt) is not torch.optim.SGD or len(opt.param_groups) != 1:
        raise ConfigError(f"backend=vectorized: the task's optimizer must be torch.optim.SGD with one param group "
                          f"(got {type(opt).__name__} with {len(opt.param_groups)} groups); use backend=inprocess")
    group = opt.param_groups[0]
    if group.get("nesterov") or group.get("dampening") or group.get("maximize"):
        raise ConfigError("backend=vectorized: SGD with nesterov, dampening or maximize is not vectorised; "
                          "use backend=inprocess")
    if plan.scheduler is not None and plan.interval != "round":
        raise ConfigError(f"backend=vectorized: a learning-rate scheduler with interval={plan.interval} changes the "
                          "rate inside a client's steps; use interval round or backend=inprocess")
    return {"lr": group["lr"], "momentum": group["momentum"], "weight_decay": group["weight_decay"],
            "scheduled": plan.scheduler is not None}


def _named(task: nn.Module) -> dict[str, Tensor]:
    return {f"task.{k}": v for k, v in task.named_parameters()}


def _grads(task: nn.Module, local_loss: Callable | None, server: State | None, shared_server: bool):
    """vmap(grad) of (total loss, task loss) over (params, x, y, client state[, server]); ``local_loss`` is the
    algorithm's term on the flat parameters (None: the task loss alone)."""
    step = _Step(task)
    names = list(_named(task))

    def loss(params: dict[str, Tensor], x: Tensor, y: Tensor, client: State, srv: State | None = None):
        task_loss = functional_call(step, params, (x, y))
        if local_loss is None:
            return task_loss, task_loss
        flat = torch.cat([params[n].reshape(-1) for n in names])
        return task_loss + local_loss(flat, server if shared_server else srv, client), task_loss

    g = grad(loss, has_aux=True)
    return vmap(g, in_dims=(0, 0, 0, 0)) if shared_server else vmap(g, in_dims=(0, 0, 0, 0, 0))


def _tensors(state: State) -> dict[str, Tensor]:
    return {k: v for k, v in state.items() if isinstance(v, Tensor)}


def train_chunk(exp: Any, epochs: dict[int, int], r: int, clients: list[int], start: Callable[[int], State],
                states: dict[int, State]) -> list[LocalResult]:
    """Train ``clients`` at once; results in ``clients`` order.

    The chunk's models live in one (k, P) tensor; each parameter is a (k, *shape) view into it, so the SGD step
    updates the models in place (``torch._foreach_*`` over the parameters when every client takes the step,
    ``index_add_`` on the rows of a smaller group) and no step copies the whole chunk."""
    t0 = time.perf_counter()
    task, alg, plan = exp.task, exp.algorithm, exp.plan
    sgd = _sgd(task)
    lr = round_rates(task, r)[0] if sgd["scheduled"] else sgd["lr"]
    starts = [start(c) for c in clients]
    shared = all(s is starts[0] for s in starts)
    k = len(clients)
    device, data = exp.device, exp.client_data  # the clients' data is already on the device (build)
    weights = torch.stack([s["params"] for s in starts])  # (k, P): the chunk's models
    views, off = {}, 0
    for name, p in _named(task).items():
        views[name] = weights[:, off:off + p.numel()].view(k, *p.shape)
        off += p.numel()
    # SGD's momentum buffers: zero before a client's first step, so the first step makes them d (as torch's SGD)
    momentum = {n: torch.zeros_like(v) for n, v in views.items()} if sgd["momentum"] else {}
    plans = [list(batches(len(exp.client_data[c][1]), plan.batch_size, epochs[c], torch_generator(plan.seed, r, c, "batches"),
                          device))
             for c in clients]
    start_grads = [gradient(task, s["params"], *exp.client_data[c], batch_size=None,
                            generator=torch_generator(plan.seed, r, c, "batches"), buffers=None)[0]
                   if alg.start_gradient else None for c, s in zip(clients, starts)]
    loss_sum = torch.zeros(k, device=device)
    server = _tensors(starts[0]) if shared else None
    start_states = None if shared else [_tensors(s) for s in starts]  # per-client start models (gossip, edges)
    names = list(views)
    grads_of = _grads(task, alg.local_loss, server, shared)
    client_states = [_tensors(states[c]) for c in clients]
    for t in range(max((len(p) for p in plans), default=0)):
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(plans):
            if t < len(p):
                idx = p[t][1]
                groups.setdefault(len(exp.client_data[clients[i]][1]) if idx is None else len(idx), []).append(i)
        for members in groups.values():
            everyone = len(members) == k
            rows = None if everyone else torch.tensor(members, device=device)
            params = views if everyone else {n: v[rows] for n, v in views.items()}
            xs, ys = zip(*(_batch(data[clients[i]], plans[i][t][1]) for i in members))
            cs = {key: torch.stack([client_states[i][key] for i in members]) for key in client_states[members[0]]}
            args = (params, torch.stack(xs), torch.stack(ys), cs)
            if not shared:
                args += ({key: torch.stack([start_states[i][key] for i in members]) for key in start_states[members[0]]},)
            with _no_logging(task):
                grads, task_loss = grads_of(*args)
            d = [grads[n] for n in names]
            if sgd["weight_decay"]:
                torch._foreach_add_(d, [params[n] for n in names], alpha=sgd["weight_decay"])
            if sgd["momentum"]:
                bufs = [momentum[n] if everyone else momentum[n][rows] for n in names]
                torch._foreach_mul_(bufs, sgd["momentum"])
                torch._foreach_add_(bufs, d)
                if not everyone:
                    for n, buf in zip(names, bufs):
                        momentum[n].index_copy_(0, rows, buf)
                d = bufs
            if everyone:
                torch._foreach_add_([views[n] for n in names], d, alpha=-lr)
                loss_sum += task_loss.detach()
            else:
                for n, step in zip(names, d):
                    views[n].index_add_(0, rows, step, alpha=-lr)
                loss_sum.index_add_(0, rows, task_loss.detach())
    losses = loss_sum.tolist()  # one transfer, after all the steps; the models stay on the device
    seconds = time.perf_counter() - t0
    total_steps = max(sum(len(p) for p in plans), 1)
    return [LocalResult(c, weights[i].clone(), len(exp.client_data[c][1]), len(plans[i]),
                        losses[i] / max(len(plans[i]), 1), seconds * len(plans[i]) / total_steps,
                        lr, start_grads[i], None, {}) for i, c in enumerate(clients)]


def _batch(data: tuple[Tensor, Tensor], idx: Tensor | None) -> tuple[Tensor, Tensor]:
    x, y = data
    if idx is None:
        return x, y
    return x[idx], y[idx]


def equal_chunks(n: int, most: int) -> int:
    """The chunk size that splits ``n`` clients into the fewest chunks of at most ``most``, as equal as possible
    (60 clients, at most 50: 30 + 30, not 50 + 10)."""
    most = max(1, min(n, most))
    return math.ceil(n / math.ceil(n / most))


# On the CPU a chunk's stacked models beyond ~10M parameters lose to cache misses what they gain in calls. Measured
# here (MNIST 2NN, 200k parameters, 100 clients of 60 samples per round, one thread): 100 clients per call 0.45 s a
# round, 50: 0.36 s, 25: 0.37 s, 10: 0.42 s; the sequential loop 0.48 s.
CPU_CHUNK_PARAMS = 10_000_000


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
    return max(1, min(math.floor(fraction * free / per_client), CPU_CHUNK_PARAMS // max(p, 1)))
