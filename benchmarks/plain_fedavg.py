"""Textbook FedAvg in plain PyTorch (torch + numpy only, no fedbench import): the reference loop.

    python benchmarks/plain_fedavg.py HANDOFF OUT.jsonl [THREADS]

Reads the handoff ``benchmarks/bench_clients.py`` wrote (fedbench's data and split in ``data.npz``, the initial
model as a torch.fx trace in ``model.pt``, the sampled clients and each (round, client)'s batch seed in
``plan.json``), so it does exactly the work fedbench does: same clients, same minibatches in the same order,
sequential clients, sample-weighted averaging (an in-place running sum, as a plain loop would write it), evaluation
every round. Writes the benchmark's events (``round_start`` before each round, ``round`` with the test accuracy,
``end`` after the last round; see ``round_clock.py``).
"""

from __future__ import annotations

import json
import sys
import time

T0 = time.time()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def local_sgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float, epochs: int, batch_size: int,
              seed: int) -> None:
    """One client's local epochs of plain SGD on cross-entropy, minibatches from a generator seeded with ``seed``."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def fedavg_round(model: torch.nn.Module, global_w: torch.Tensor, clients: list, sampled: list[int], *, lr: float,
                 epochs: int, batch_size: int, seeds: dict) -> torch.Tensor:
    """One round: each sampled client trains from ``global_w``; the new model is the sample-weighted mean, kept as an
    in-place running sum (no stacked copy of the clients' models)."""
    params = list(model.parameters())
    total, count = torch.zeros_like(global_w), 0
    for c in sampled:
        cx, cy = clients[c]
        torch.nn.utils.vector_to_parameters(global_w.clone(), params)  # (it makes params views of its input)
        local_sgd(model, cx, cy, lr=lr, epochs=epochs, batch_size=batch_size, seed=seeds[c])
        total.add_(torch.nn.utils.parameters_to_vector(params).detach(), alpha=len(cy))
        count += len(cy)
    return total / count


def main(handoff: str, out: str) -> None:
    plan = json.loads(open(f"{handoff}/plan.json").read())
    d = np.load(f"{handoff}/data.npz")
    x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"]).long()
    xt, yt = torch.from_numpy(d["x_test"]), torch.from_numpy(d["y_test"]).long()
    bounds = [*d["offsets"].tolist(), len(d["index"])]
    index = torch.from_numpy(d["index"])
    clients = [(x[index[a:b]].contiguous(), y[index[a:b]].contiguous()) for a, b in zip(bounds[:-1], bounds[1:])]
    # the benchmark's own handoff, written moments before under outputs/bench (a torch.fx trace: only full unpickling
    # rebuilds it); fedbench's backends check such a file's hash first (fedbench/backends/handoff_model.py)
    model = torch.load(f"{handoff}/model.pt", weights_only=False)
    params = list(model.parameters())
    global_w = torch.nn.utils.parameters_to_vector(params).detach().clone()
    log = open(out, "w")

    def event(**e) -> None:
        log.write(json.dumps({**e, "t": time.time()}) + "\n")
        log.flush()

    for r, sampled in enumerate(plan["sampled"], start=1):
        event(event="round_start", round=r)
        seeds = {c: plan["batch_seeds"][str(r)][str(c)] for c in sampled}
        global_w = fedavg_round(model, global_w, clients, sampled, lr=plan["lr"], epochs=plan["epochs"],
                                batch_size=plan["batch_size"], seeds=seeds)
        torch.nn.utils.vector_to_parameters(global_w.clone(), params)
        with torch.no_grad():
            acc = (model(xt).argmax(1) == yt).float().mean().item()
        event(event="round", round=r, acc=acc)
    event(event="end")
    log.close()


if __name__ == "__main__":
    if len(sys.argv) > 3:
        torch.set_num_threads(int(sys.argv[3]))
    main(sys.argv[1], sys.argv[2])
