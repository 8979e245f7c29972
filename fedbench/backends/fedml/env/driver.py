"""Run one fedbench experiment with FedML 0.9.6's own simulator, inside FedML's isolated environment.

    python driver.py HANDOFF                      # backend.mode=sp
    mpirun -np K+1 python driver.py HANDOFF       # backend.mode=mpi: rank 0 is FedML's server

fedbench (``fedbench/backends/fedml/handoff.py``) wrote ``HANDOFF``:
  fedml_config.yaml  FedML's own configuration (what fedbench translated; readable as any FedML config)
  data.npz           fedbench's data and partition: x_train, y_train, x_test, y_test, and each client's
                     training indices (``index`` concatenated, ``offsets`` where each client starts)
  model.pt           the initial model, traced with torch.fx so that it loads without fedbench
  plan.json          batch sizes and the clients fedbench samples in each round
This script imports FedML and torch only (never fedbench). FedML trains; this script feeds it fedbench's
split as FedML's custom-data tuple, makes FedML sample fedbench's clients, and records what FedML logs
per round (``mlops.log``) to ``HANDOFF/rounds.jsonl``, which fedbench turns into metrics.csv.
"""

from __future__ import annotations

import json
import runpy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

# Where each FedML simulator asks which clients train in a round (sp: the trainer; mpi: the aggregator).
SAMPLING_METHODS = (
    ("fedml.simulation.sp.fedavg.fedavg_api", "FedAvgAPI", "_client_sampling"),
    ("fedml.simulation.sp.fedprox.fedprox_trainer", "FedProxTrainer", "_client_sampling"),
    ("fedml.simulation.mpi.fedavg.FedAVGAggregator", "FedAVGAggregator", "client_sampling"),
    ("fedml.simulation.mpi.fedprox.FedProxAggregator", "FedProxAggregator", "client_sampling"),
)



def _load_model(path: Path):  # noqa: ANN202
    """fedbench's hash-checked loader (``fedbench/backends/handoff_model.py``, run by path: no fedbench here)."""
    return runpy.run_path(str(Path(__file__).resolve().parents[2] / "handoff_model.py"))["load_model"](path)

def loaders(handoff: Path, plan: dict) -> list:
    """FedML's dataset tuple from fedbench's split. Each client's test loader holds one slice of the
    global test set, so FedML's accuracy summed over clients is the accuracy on the whole test set."""
    d = np.load(handoff / "data.npz")
    x, y = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"]).long()
    xt, yt = torch.from_numpy(d["x_test"]), torch.from_numpy(d["y_test"]).long()
    bounds = list(d["offsets"]) + [len(d["index"])]
    parts = [d["index"][bounds[c]:bounds[c + 1]] for c in range(len(bounds) - 1)]
    batch, test_batch = plan["batch_size"], plan["test_batch_size"]
    gen = torch.Generator().manual_seed(plan["seed"])
    train = {c: DataLoader(TensorDataset(x[p], y[p]), batch_size=batch or len(p), shuffle=True, generator=gen)
             for c, p in enumerate(parts)}
    slices = np.array_split(np.arange(len(yt)), len(parts))
    test = {c: DataLoader(TensorDataset(xt[s], yt[s]), batch_size=test_batch) for c, s in enumerate(slices)}
    num = {c: len(p) for c, p in enumerate(parts)}
    return [len(y), len(yt), DataLoader(TensorDataset(x, y), batch_size=test_batch),
            DataLoader(TensorDataset(xt, yt), batch_size=test_batch), num, train, test, plan["num_classes"]]


def use_fedbench_sampling(sampled: list[list[int]]) -> None:
    """FedML draws its own clients (np.random.seed(round)); make every simulator take fedbench's."""
    import importlib

    def chosen(self, round_idx, client_num_in_total, client_num_per_round):
        return list(sampled[round_idx])

    for module, cls, method in SAMPLING_METHODS:
        try:
            setattr(getattr(importlib.import_module(module), cls), method, chosen)
        except (ImportError, AttributeError):
            pass


def record_rounds(out: Path, rank: int) -> None:
    """Append each round's logged metrics (test accuracy/loss; sp also the global model's training
    accuracy/loss) with the time they were logged, one JSON line per metric, on rank 0 only."""
    import fedml

    def log(metrics: dict, *args, **kwargs) -> None:
        if rank == 0 and "round" in metrics:
            with out.open("a") as f:
                f.write(json.dumps({**metrics, "t": time.time()}) + "\n")

    fedml.mlops.log = log


def copy_on_get_model_params() -> None:
    """FedML 0.9.6's trainers return ``model.state_dict()`` itself from ``get_model_params``. Its
    single-process FedAvg/FedProx take round 1's global model that way and train each client from a copy
    made when that client starts, by which time the previous clients' training has changed those very
    tensors: in round 1 the clients train one after another instead of from the same model (later rounds
    use the aggregated dict and are unaffected). Returning a copy restores the algorithm."""
    from fedml.ml.trainer.fedprox_trainer import FedProxModelTrainer
    from fedml.ml.trainer.my_model_trainer_classification import ModelTrainerCLS

    def get_model_params(self):
        return {k: v.detach().clone() for k, v in self.model.cpu().state_dict().items()}

    for cls in (ModelTrainerCLS, FedProxModelTrainer):
        cls.get_model_params = get_model_params


def log_training_metrics(train_global: DataLoader) -> None:
    """FedML's MPI server logs only test metrics; make it also log the aggregated model's accuracy and
    loss on all training data, as its single-process simulator does, so both modes fill the same columns."""
    import fedml
    from fedml.ml.aggregator.default_aggregator import DefaultServerAggregator

    original = DefaultServerAggregator.test

    def test(self, test_data, device, args):
        result = original(self, test_data, device, args)
        m = self._test(train_global, device, args)
        fedml.mlops.log({"Train/Acc": m["test_correct"] / m["test_total"],
                         "Train/Loss": m["test_loss"] / m["test_total"], "round": args.round_idx})
        return result

    DefaultServerAggregator.test = test


def main(handoff: Path) -> None:
    plan = json.loads((handoff / "plan.json").read_text())
    if plan["threads"]:  # 0: torch's default
        torch.set_num_threads(plan["threads"])
    sys.argv = [sys.argv[0], "--cf", str(handoff / "fedml_config.yaml")]
    import fedml
    from fedml import FedMLRunner

    args = fedml.init()
    rank = int(getattr(args, "process_id", 0) or 0)
    record_rounds(handoff / "rounds.jsonl", rank)
    use_fedbench_sampling(plan["sampled"])
    device = fedml.device.get_device(args)
    model = _load_model(handoff / "model.pt")
    dataset = loaders(handoff, plan)
    log_training_metrics(dataset[2])
    copy_on_get_model_params()
    if rank == 0:
        (handoff / "started").write_text(json.dumps({"t": time.time()}) + "\n")
    FedMLRunner(args, device, dataset, model).run()
    if rank == 0:
        (handoff / "finished").write_text(json.dumps({"t": time.time()}) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
