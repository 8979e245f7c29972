"""Run one fedbench experiment through Flower 1.42's simulation engine, inside Flower's isolated environment.

    python driver.py HANDOFF

fedbench (``fedbench/backends/flower/runner.py`` through ``fedbench/backends/handoff.py``) wrote ``HANDOFF``:
  data.npz    fedbench's data and split: x_train, y_train, x_test, y_test, each client's training indices
  model.pt    the initial model, traced with torch.fx so that it loads without fedbench
  plan.json   the clients fedbench samples each round, their minibatch seeds, local training settings, and
              ``flower``: the strategy (one of ``flwr.serverapp.strategy``'s, with its options) and Ray's resources
This script imports Flower, torch and numpy only (never fedbench). Flower runs everything: ``run_simulation`` starts
Ray, a ``ServerApp`` runs Flower's own strategy (``Strategy.start``) and ``ClientApp``s train on Ray's actors. Two
things are fedbench's: the strategy's ``configure_train`` addresses round r's messages to the nodes Flower sampled
but names fedbench's sampled clients' partitions in their config (Flower's stateless-client pattern), and each
client shuffles its minibatches with fedbench's per-(round, client) seed. What crosses Flower's ``Grid`` is counted
there: every ``Array`` of every ``ArrayRecord`` in the messages sent and the replies received (``len(Array.data)``:
the values plus each array's .npy header; not the protobuf framing nor Ray's serialization). Per round, one JSON
line goes to ``HANDOFF/rounds.jsonl``; ``started`` / ``finished`` mark the first round's start and the end.
"""

from __future__ import annotations

import json
import runpy
import os
import sys
import time
from pathlib import Path

T0 = time.time()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp import strategy as strategies  # noqa: E402
from flwr.simulation import run_simulation  # noqa: E402

IMPORTED = time.time()



def _load_model(path: Path):  # noqa: ANN202
    """fedbench's hash-checked loader (``fedbench/backends/handoff_model.py``, run by path: no fedbench here)."""
    return runpy.run_path(str(Path(__file__).resolve().parents[2] / "handoff_model.py"))["load_model"](path)

def load(handoff: Path, device: str = "cpu"):
    """The plan, each client's (x, y) on ``device`` and the test set."""
    plan = json.loads((handoff / "plan.json").read_text())
    d = np.load(handoff / "data.npz")
    x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"]).long()
    bounds = [*d["offsets"].tolist(), len(d["index"])]
    index = torch.from_numpy(d["index"])
    clients = [(x[index[a:b]].to(device), y[index[a:b]].to(device)) for a, b in zip(bounds[:-1], bounds[1:])]
    return plan, clients, (torch.from_numpy(d["x_test"]), torch.from_numpy(d["y_test"]).long())


def batches(n: int, batch_size: int | None, epochs: int, gen: torch.Generator):
    """fedbench's minibatch order (``fedbench.local.batches``): a fresh permutation per epoch, None = full batch."""
    for _ in range(epochs):
        if batch_size is None or batch_size >= n:
            yield None
            continue
        yield from torch.randperm(n, generator=gen).split(batch_size)


def local_train(model, x, y, plan: dict, r: int, c: int, mu: float) -> tuple[float, int]:
    """E epochs of SGD from the received model, as fedbench's local loop: the same batches, optimizer and loss (with
    FedProx's ``mu/2 ||w - w_t||^2``); returns the mean task loss over the steps and the steps."""
    gen = torch.Generator().manual_seed(plan["batch_seeds"][str(r)][str(c)])
    torch.default_generator.manual_seed(plan["local_seeds"][str(r)][str(c)])  # the model's own randomness
    start = [p.detach().clone() for p in model.parameters()] if mu else []
    opt = torch.optim.SGD(model.parameters(), lr=plan["lr"], momentum=plan["momentum"],
                          weight_decay=plan["weight_decay"])
    model.train()
    losses = []
    for idx in batches(len(y), plan["batch_size"], plan["epochs"], gen):
        xb, yb = (x, y) if idx is None else (x[idx.to(x.device)], y[idx.to(x.device)])
        loss = F.cross_entropy(model(xb), yb)
        total = loss + mu / 2 * sum(((p - p0) ** 2).sum() for p, p0 in zip(model.parameters(), start)) if mu else loss
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        losses.append(loss.detach())
    return float(torch.stack(losses).mean()), len(losses)


_ACTOR: dict = {}  # per Ray worker process: the handoff, loaded once (as a Flower user's client code would)


def actor_state(handoff: Path):
    if not _ACTOR:
        called = time.time()
        plan = json.loads((handoff / "plan.json").read_text())
        device = "cuda" if plan["flower"]["client_gpus"] > 0 and torch.cuda.is_available() else "cpu"
        torch.set_num_threads(plan["flower"]["threads"])
        plan, clients, _ = load(handoff, device)
        model = _load_model(handoff / "model.pt").to(device)
        _ACTOR.update(plan=plan, clients=clients, model=model)
        with (handoff / "actors.jsonl").open("a") as f:  # when each Ray actor first ran the ClientApp
            f.write(json.dumps({"pid": os.getpid(), "called": called, "ready": time.time()}) + "\n")
    return _ACTOR["plan"], _ACTOR["clients"], _ACTOR["model"]


def client_app(handoff: Path) -> ClientApp:
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        plan, clients, model = actor_state(handoff)
        config = msg.content["config"]
        r, c = int(config["server-round"]), int(config["partition"])
        x, y = clients[c]
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        extra = {}
        if plan["flower"]["start_loss"]:  # QFedAvg's F_k(w^t): the loss at the received model, before training
            extra["start-loss"] = evaluate(model, x, y, plan["test_batch_size"])[1]
        loss, steps = local_train(model, x, y, plan, r, c, float(config.get("proximal-mu", 0.0)))
        metrics = MetricRecord({"num-examples": len(y), "train_loss": loss, "steps": steps, **extra})
        return Message(content=RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}),
                       reply_to=msg)

    return app


def array_bytes(content: RecordDict) -> int:
    """Bytes of every Array of every ArrayRecord in a message's content (values plus .npy headers)."""
    return sum(len(a.data) for record in content.array_records.values() for a in record.values())


class CountingGrid:
    """Flower's Grid, counting what crosses it per round; a reply with an error stops the run (Flower's strategies
    would aggregate the others, a different experiment than fedbench's)."""

    def __init__(self, grid: Grid) -> None:
        self.grid, self.round = grid, {}

    def __getattr__(self, name: str):
        return getattr(self.grid, name)

    def send_and_receive(self, messages, *, timeout: float | None = None):
        messages = list(messages)
        if not messages:
            return []
        replies = list(self.grid.send_and_receive(messages, timeout=timeout))
        failed = [m.error.reason for m in replies if m.has_error()]
        if failed or len(replies) != len(messages):
            raise RuntimeError(f"{len(failed)} of {len(messages)} clients failed ({len(replies)} replies): {failed[:3]}")
        weights = [m.content["metrics"]["num-examples"] for m in replies]
        losses = [m.content["metrics"]["train_loss"] for m in replies]
        self.round.update(bytes_down=sum(array_bytes(m.content) for m in messages), messages_down=len(messages),
                          bytes_up=sum(array_bytes(m.content) for m in replies), messages_up=len(replies),
                          steps=sum(m.content["metrics"]["steps"] for m in replies),
                          train_loss=sum(w * v for w, v in zip(weights, losses)) / sum(weights))
        return replies


def evaluate(model, x, y, batch: int) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` on (x, y)."""
    correct, loss = 0, 0.0
    model.eval()
    with torch.no_grad():
        for a in range(0, len(y), batch):
            logits = model(x[a:a + batch])
            correct += int((logits.argmax(1) == y[a:a + batch]).sum())
            loss += float(F.cross_entropy(logits, y[a:a + batch], reduction="sum"))  # float32 sums, as fedbench
    return correct / len(y), loss / len(y)


def fedbench_strategy(name: str, plan: dict, write):
    """Flower's strategy ``name``, sending round r's messages for fedbench's sampled clients."""

    class Fedbench(getattr(strategies, name)):
        def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid):
            configured = time.time()
            messages = list(super().configure_train(server_round, arrays, config, grid))  # Flower samples nodes
            grid.round = {"t0": time.time()}  # round 1: once every SuperNode is connected
            if server_round == 1:
                write("started", {"t": grid.round["t0"], "configured": configured, "imported": IMPORTED,
                                  "launched": T0})
            sampled = plan["sampled"][server_round - 1]
            assert len(messages) == len(sampled), (len(messages), len(sampled))
            return [Message(content=RecordDict({"arrays": m.content["arrays"], "config": ConfigRecord(
                {**dict(m.content["config"]), "partition": c})}), message_type=MessageType.TRAIN,
                dst_node_id=m.metadata.dst_node_id) for m, c in zip(messages, sampled)]

    return Fedbench


def server_app(handoff: Path) -> ServerApp:
    plan, _, (xt, yt) = load(handoff)
    model = _load_model(handoff / "model.pt")
    rounds, n, m = len(plan["sampled"]), plan["num_clients"], len(plan["sampled"][0])
    spec = plan["flower"]["strategy"]

    def write(name: str, entry: dict) -> None:
        with (handoff / name).open("a" if name == "rounds.jsonl" else "w") as f:
            f.write(json.dumps(entry) + "\n")

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        counting = CountingGrid(grid)

        def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            if server_round == 0:
                return None
            acc = loss = float("nan")
            if server_round % plan["eval_every"] == 0 or server_round == rounds:
                model.load_state_dict(arrays.to_torch_state_dict())
                acc, loss = evaluate(model, xt, yt, plan["test_batch_size"])
            write("rounds.jsonl", {"round": server_round, "acc": acc, "loss": loss, **counting.round, "t": time.time()})
            return MetricRecord({"accuracy": acc, "loss": loss})

        cls = fedbench_strategy(spec["name"], plan, write)
        strategy = cls(**spec["options"], fraction_train=m / n, min_train_nodes=m, fraction_evaluate=0.0,
                       min_available_nodes=n)
        strategy.start(grid=counting, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=rounds,
                       evaluate_fn=evaluate_fn)

    return app


def main(handoff: Path) -> None:
    plan = json.loads((handoff / "plan.json").read_text())
    flower = plan["flower"]
    if flower["threads"]:
        torch.set_num_threads(flower["threads"])
    init_args = {"num_cpus": flower["cpus"], "include_dashboard": False, "log_to_driver": False}
    if flower["gpus"] is not None:
        init_args["num_gpus"] = flower["gpus"]
    run_simulation(server_app(handoff), client_app(handoff), num_supernodes=plan["num_clients"],
                   backend_config={"client_resources": {"num_cpus": flower["client_cpus"],
                                                        "num_gpus": flower["client_gpus"]},
                                   "init_args": init_args})
    (handoff / "finished").write_text(json.dumps({"t": time.time()}) + "\n")


if __name__ == "__main__":
    # Run as the importable module ``driver``, not ``__main__``: Ray pickles functions of ``__main__`` by value, so
    # each message would unpickle a fresh ``_ACTOR`` cache and reload the handoff; functions of a module are pickled
    # by reference, and the actors (which inherit PYTHONPATH) import it once per process.
    os.environ["PYTHONPATH"] = str(Path(__file__).parent)
    import driver

    driver.T0 = T0
    driver.main(Path(sys.argv[1]))
