"""The same FedAvg through Flower's simulation (``flwr[simulation]``, Ray backend), in Flower's own environment.

    python flower_fedavg.py HANDOFF OUT.jsonl THREADS

Reads the handoff ``benchmarks/bench_clients.py`` wrote (data and split, the initial model as a torch.fx trace,
the sampled clients and batch seeds). A ``FedAvg`` strategy whose ``configure_fit`` picks fedbench's sampled
clients by id, clients (``NumPyClient``) that train with the same minibatch seeds as fedbench, and a central
``evaluate_fn`` on the test set every round: the same work as the plain loop and fedbench, through Flower's
machinery. Writes a ``started`` line and one JSON line per round (end time, test accuracy); Flower's own
round start is the previous round's end.
"""

from __future__ import annotations

import json
import sys
import time

T0 = time.time()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from flwr.client import NumPyClient  # noqa: E402
from flwr.common import ndarrays_to_parameters  # noqa: E402
from flwr.server import ServerConfig  # noqa: E402
from flwr.server.strategy import FedAvg  # noqa: E402
from flwr.simulation import start_simulation  # noqa: E402


def load(handoff: str):
    plan = json.loads(open(f"{handoff}/plan.json").read())
    d = np.load(f"{handoff}/data.npz")
    x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"]).long()
    bounds = [*d["offsets"].tolist(), len(d["index"])]
    index = torch.from_numpy(d["index"])
    clients = [(x[index[a:b]].contiguous(), y[index[a:b]].contiguous()) for a, b in zip(bounds[:-1], bounds[1:])]
    test = torch.from_numpy(d["x_test"]), torch.from_numpy(d["y_test"]).long()
    return plan, clients, test


_ACTOR: dict = {}  # per Ray worker process: the handoff, loaded once (as a Flower user's client_fn would)


def actor_state(handoff: str, threads: int):
    if not _ACTOR:
        torch.set_num_threads(threads)
        plan, clients, _ = load(handoff)
        _ACTOR.update(plan=plan, clients=clients, model=torch.load(f"{handoff}/model.pt", weights_only=False))
    return _ACTOR["plan"], _ACTOR["clients"], _ACTOR["model"]


def get_weights(model: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().cpu().numpy().copy() for p in model.parameters()]


def set_weights(model: torch.nn.Module, weights: list[np.ndarray]) -> None:
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights):
            p.copy_(torch.from_numpy(np.asarray(w)))


def main(handoff: str, out: str, threads: int) -> None:
    torch.set_num_threads(threads)
    plan, clients, (xt, yt) = load(handoff)
    model = torch.load(f"{handoff}/model.pt", weights_only=False)
    log = open(out, "w")
    log.write(json.dumps({"event": "started", "t": time.time(), "launched": T0}) + "\n")
    log.flush()

    class Client(NumPyClient):
        def __init__(self, cid: int) -> None:
            self.cid = cid

        def fit(self, parameters, config):
            plan, clients, model = actor_state(handoff, threads)
            r, (cx, cy) = int(config["round"]), clients[self.cid]
            set_weights(model, parameters)
            opt = torch.optim.SGD(model.parameters(), lr=plan["lr"])
            gen = torch.Generator().manual_seed(plan["batch_seeds"][str(r)][str(self.cid)])
            for _ in range(plan["epochs"]):
                for idx in torch.randperm(len(cy), generator=gen).split(plan["batch_size"]):
                    loss = F.cross_entropy(model(cx[idx]), cy[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            return get_weights(model), len(cy), {}

    def client_fn(context):
        return Client(int(context.node_config["partition-id"])).to_client()

    class FedbenchSampling(FedAvg):
        """fedbench's sampled clients each round instead of Flower's own draw."""

        def configure_fit(self, server_round, parameters, client_manager):
            client_manager.wait_for(len(clients))
            everyone = client_manager.all()
            by_partition = {int(proxy.partition_id) if hasattr(proxy, "partition_id") else int(cid): proxy
                            for cid, proxy in everyone.items()}
            from flwr.common import FitIns

            ins = FitIns(parameters, {"round": server_round})
            return [(by_partition[c], ins) for c in plan["sampled"][server_round - 1]]

    def evaluate(server_round, weights, config):
        if server_round == 0:
            return None
        set_weights(model, weights)
        with torch.no_grad():
            acc = (model(xt).argmax(1) == yt).float().mean().item()
        log.write(json.dumps({"event": "round", "round": server_round, "end": time.time(), "acc": acc}) + "\n")
        log.flush()
        return 0.0, {"accuracy": acc}

    strategy = FedbenchSampling(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=1, min_evaluate_clients=0,
                                min_available_clients=len(clients), evaluate_fn=evaluate,
                                initial_parameters=ndarrays_to_parameters(get_weights(model)))
    start_simulation(client_fn=client_fn, num_clients=len(clients), config=ServerConfig(num_rounds=len(plan["sampled"])),
                     strategy=strategy, client_resources={"num_cpus": 1, "num_gpus": 0.0},
                     ray_init_args={"num_cpus": threads, "include_dashboard": False, "log_to_driver": False})
    log.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
