"""Textbook FedAvg in plain PyTorch (torch + numpy only, no fedbench import): the reference loop.

    python benchmarks/plain_fedavg.py HANDOFF OUT.jsonl

Reads the handoff ``benchmarks/bench_clients.py`` wrote (fedbench's data and split in ``data.npz``, the initial
model as a torch.fx trace in ``model.pt``, the sampled clients and each (round, client)'s batch seed in
``plan.json``), so it does exactly the work fedbench does: same clients, same minibatches in the same order,
sequential clients, sample-weighted averaging, evaluation every round. Writes one JSON line per round
(start/end time, test accuracy) after a ``started`` line once its imports are done.
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


def main(handoff: str, out: str) -> None:
    plan = json.loads(open(f"{handoff}/plan.json").read())
    d = np.load(f"{handoff}/data.npz")
    x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"]).long()
    xt, yt = torch.from_numpy(d["x_test"]), torch.from_numpy(d["y_test"]).long()
    bounds = [*d["offsets"].tolist(), len(d["index"])]
    index = torch.from_numpy(d["index"])
    clients = [(x[index[a:b]].contiguous(), y[index[a:b]].contiguous()) for a, b in zip(bounds[:-1], bounds[1:])]
    model = torch.load(f"{handoff}/model.pt", weights_only=False)
    params = list(model.parameters())
    global_w = torch.nn.utils.parameters_to_vector(params).detach().clone()
    log = open(out, "w")
    log.write(json.dumps({"event": "started", "t": time.time(), "launched": T0}) + "\n")
    for r, sampled in enumerate(plan["sampled"], start=1):
        t_start = time.time()
        results, weights = [], []
        for c in sampled:
            cx, cy = clients[c]
            torch.nn.utils.vector_to_parameters(global_w.clone(), params)  # (it makes params views of its input)
            local_sgd(model, cx, cy, lr=plan["lr"], epochs=plan["epochs"], batch_size=plan["batch_size"],
                      seed=plan["batch_seeds"][str(r)][str(c)])
            results.append(torch.nn.utils.parameters_to_vector(params).detach().clone())
            weights.append(len(cy))
        w = torch.tensor(weights, dtype=torch.float64)
        global_w = ((w / w.sum()) @ torch.stack(results).double()).float()
        torch.nn.utils.vector_to_parameters(global_w.clone(), params)
        with torch.no_grad():
            acc = (model(xt).argmax(1) == yt).float().mean().item()
        log.write(json.dumps({"event": "round", "round": r, "start": t_start, "end": time.time(), "acc": acc}) + "\n")
        log.flush()
    log.close()


if __name__ == "__main__":
    if len(sys.argv) > 3:
        torch.set_num_threads(int(sys.argv[3]))
    main(sys.argv[1], sys.argv[2])
