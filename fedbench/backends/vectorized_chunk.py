"""One chunk of vectorised clients trained at once (:mod:`fedbench.backends.vectorized`): the chunk's models in
one (k, P) tensor, each parameter a (k, *shape) view into it; per local step the clients that still have a batch are
grouped by batch size, each group takes one batched gradient call and an in-place SGD step. The gradient is
``vmap(grad(loss))``, or for a Linear-ReLU network under cross-entropy with no local loss term the hand-derived batched
pass of :mod:`fedbench.backends.batched_mlp` (faster on the CPU)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from fedbench.algorithms.base import LocalResult, State
from fedbench.backends.batched_mlp import batched_grads, batched_sgd_step, linear_relu_chain
from fedbench.errors import ConfigError
from fedbench.local import batches, evaluate, gradient
from fedbench.local_optim import configure, round_rates
from fedbench.seeding import torch_generator


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


def sgd_settings(task: nn.Module) -> dict[str, Any]:
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


@dataclass
class _Chunk:
    """A chunk's stacked models, their per-parameter views, SGD's momentum, each client's batch plan and state."""

    clients: list[int]
    weights: Tensor
    views: dict[str, Tensor]
    momentum: dict[str, Tensor]
    plans: list[list]
    client_states: list[dict[str, Tensor]]
    start_states: list[dict[str, Tensor]] | None
    loss_sum: Tensor
    stacked: tuple[Tensor, Tensor, list[int]] | None = None  # equal clients: (k, n, ...) batches in step order


def _stack_in_step_order(exp: Any, clients: list[int], plans: list[list]) -> tuple[Tensor, Tensor, list[int]] | None:
    """For clients of equal sizes (so equal batch plans), every client's samples gathered once in the order its
    batches take them, as (k, n, ...) tensors, and each step's offset: a step's batches are then one view, not k index
    operations and a stack. None when the clients' plans differ or a step is the full batch."""
    sizes = {tuple(len(idx) if idx is not None else -1 for _, idx in p) for p in plans}
    if len(sizes) != 1 or -1 in next(iter(sizes)):
        return None
    xs, ys = zip(*(_batch(exp.client_data[c], torch.cat([idx for _, idx in p])) for c, p in zip(clients, plans)))
    offsets = [0]
    for n in next(iter(sizes)):
        offsets.append(offsets[-1] + n)
    return torch.stack(xs), torch.stack(ys), offsets


def _chunk(exp: Any, epochs: dict[int, int], r: int, clients: list[int], starts: list[State], shared: bool,
           states: dict[int, State], sgd: dict[str, Any]) -> _Chunk:
    """Stack the chunk's start models (views per parameter), zero momentum, and draw every client's batches."""
    task, plan, k = exp.task, exp.plan, len(clients)
    weights = torch.stack([s["params"] for s in starts])  # (k, P): the chunk's models
    views, off = {}, 0
    for name, p in _named(task).items():
        views[name] = weights[:, off:off + p.numel()].view(k, *p.shape)
        off += p.numel()
    # SGD's momentum buffers: zero before a client's first step, so the first step makes them d (as torch's SGD)
    momentum = {n: torch.zeros_like(v) for n, v in views.items()} if sgd["momentum"] else {}
    plans = [list(batches(len(exp.client_data[c][1]), plan.batch_size, epochs[c],
                          torch_generator(plan.seed, r, c, "batches"), exp.device)) for c in clients]
    return _Chunk(clients, weights, views, momentum, plans, [_tensors(states[c]) for c in clients],
                  None if shared else [_tensors(s) for s in starts], torch.zeros(k, device=exp.device),
                  _stack_in_step_order(exp, clients, plans) if k > 1 else None)


def _step_group(exp: Any, ch: _Chunk, t: int, members: list[int], grads_of: Callable, sgd: dict[str, Any],
                lr: float, fused: Callable | None = None) -> None:
    """Local step ``t`` of the chunk rows ``members`` (clients with equal batch sizes): one batched gradient call,
    then SGD (weight decay, momentum) in place on their rows; or, with ``fused`` and the whole chunk stepping, one
    call that updates the models in place (plain SGD)."""
    views, momentum, names = ch.views, ch.momentum, list(ch.views)
    everyone = len(members) == len(ch.clients)
    if ch.stacked is not None:  # equal clients: everyone steps, the step's batches are one view
        x_all, y_all, offsets = ch.stacked
        xs, ys = x_all[:, offsets[t]:offsets[t + 1]], y_all[:, offsets[t]:offsets[t + 1]]
    else:
        xs, ys = (torch.stack(v) for v in zip(*(_batch(exp.client_data[ch.clients[i]], ch.plans[i][t][1])
                                                for i in members)))
    if fused is not None and everyone:
        ch.loss_sum += fused(views, xs, ys, lr)
        return
    rows = None if everyone else torch.tensor(members, device=exp.device)
    params = views if everyone else {n: v[rows] for n, v in views.items()}
    cs = {key: torch.stack([ch.client_states[i][key] for i in members]) for key in ch.client_states[members[0]]}
    args = (params, xs, ys, cs)
    if ch.start_states is not None:
        args += ({key: torch.stack([ch.start_states[i][key] for i in members]) for key in ch.start_states[members[0]]},)
    with _no_logging(exp.task):
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
        ch.loss_sum += task_loss.detach()
    else:
        for n, step in zip(names, d):
            views[n].index_add_(0, rows, step, alpha=-lr)
        ch.loss_sum.index_add_(0, rows, task_loss.detach())


def train_chunk(exp: Any, epochs: dict[int, int], r: int, clients: list[int], start: Callable[[int], State],
                states: dict[int, State], sgd: dict[str, Any] | None = None, fuse_sgd: bool = False
                ) -> list[LocalResult]:
    """Train ``clients`` at once; results in ``clients`` order. ``fuse_sgd``: on the hand-derived pass with plain SGD,
    fold the update into the gradient's product (:func:`~fedbench.backends.batched_mlp.batched_sgd_step`).

    The chunk's models live in one (k, P) tensor; each parameter is a (k, *shape) view into it, so the SGD step
    updates the models in place (``torch._foreach_*`` over the parameters when every client takes the step,
    ``index_add_`` on the rows of a smaller group) and no step copies the whole chunk. Each result's parameters are
    its row of that tensor (contiguous, no copy; nothing downstream writes an upload in place)."""
    t0 = time.perf_counter()
    task, alg, plan = exp.task, exp.algorithm, exp.plan
    sgd = sgd if sgd is not None else sgd_settings(task)  # read once a round by the caller
    lr = round_rates(task, r)[0] if sgd["scheduled"] else sgd["lr"]
    starts = [start(c) for c in clients]
    shared = all(s is starts[0] for s in starts)
    ch = _chunk(exp, epochs, r, clients, starts, shared, states, sgd)
    start_grads = [gradient(task, s["params"], *exp.client_data[c], batch_size=None,
                            generator=torch_generator(plan.seed, r, c, "batches"), buffers=None)[0]
                   if alg.start_gradient else None for c, s in zip(clients, starts)]
    start_losses = [evaluate(task, s["params"], *exp.client_data[c])[1] if alg.start_loss else None
                    for c, s in zip(clients, starts)]
    layers = linear_relu_chain(task) if alg.local_loss is None else None  # the hand-derived batched pass applies
    grads_of = batched_grads(layers) if layers else _grads(task, alg.local_loss, _tensors(starts[0]) if shared else None,
                                                           shared)
    # by default the generic step below (gradients, then torch.optim.SGD's update) keeps the sequential loop's bits
    fused = (batched_sgd_step(layers) if fuse_sgd and layers and not sgd["momentum"] and not sgd["weight_decay"]
             else None)
    for t in range(max((len(p) for p in ch.plans), default=0)):
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(ch.plans):
            if t < len(p):
                idx = p[t][1]
                groups.setdefault(len(exp.client_data[clients[i]][1]) if idx is None else len(idx), []).append(i)
        for members in groups.values():
            _step_group(exp, ch, t, members, grads_of, sgd, lr, fused)
    losses = ch.loss_sum.tolist()  # one transfer, after all the steps; the models stay on the device
    seconds = time.perf_counter() - t0
    total_steps = max(sum(len(p) for p in ch.plans), 1)
    return [LocalResult(c, ch.weights[i], len(exp.client_data[c][1]), len(ch.plans[i]),
                        losses[i] / max(len(ch.plans[i]), 1), seconds * len(ch.plans[i]) / total_steps,
                        lr, start_grads[i], None, {}, start_loss=start_losses[i]) for i, c in enumerate(clients)]


def _batch(data: tuple[Tensor, Tensor], idx: Tensor | None) -> tuple[Tensor, Tensor]:
    x, y = data
    if idx is None:
        return x, y
    return x[idx], y[idx]


