"""fedbench's config -> FedML 0.9.6's ``fedml_config.yaml``, with every option FedML cannot honour refused
by name before any work (no environment built, no data loaded, nothing written)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from fedbench.device import DEFAULT
from fedbench.errors import ConfigError, require, require_choice
from fedbench.sampling import clients_per_round
from fedbench.validate import is_int

MODES = ("sp", "mpi", "nccl")
# fedbench algorithm -> FedML's federated_optimizer, for the modes fedbench has wired and tested
ALGORITHMS = {"fedavg": "FedAvg", "fedprox": "FedProx"}
# parts that must keep their default: FedML's simulators have no counterpart
DEFAULT_PARTS = {
    "topology": "fedbench.topology.star.star",
    "compressor": "fedbench.compress.none.none",
    "aggregator": "fedbench.aggregators.mean",
    "attack": "fedbench.attacks.none",
    "privacy": "fedbench.privacy.none",
}
CLASSIFIER = "fedbench.tasks.classifier.ClassifierTask"


def _name(node: Any) -> str:
    return str(node.get("_target_", "?")).rsplit(".", 1)[-1]


def check(cfg: DictConfig) -> None:
    """Raise ConfigError for anything ``backend=fedml`` cannot run as asked."""
    b = cfg.backend
    require_choice(b.mode, "backend.mode", MODES)
    if b.mode == "nccl":
        raise ConfigError("backend.mode=nccl (FedML's multi-GPU simulator) is not wired into fedbench yet: it was "
                          "never run on a GPU here; use backend.mode=sp or mpi, or backend=ddp for GPUs")
    require(cfg.get("paradigm", "federated") == "federated", "paradigm", "federated with backend=fedml",
            cfg.get("paradigm"))
    algo = _name(cfg.algorithm)
    if algo not in ALGORITHMS:
        raise ConfigError(f"algorithm: backend=fedml runs {sorted(ALGORITHMS)} through FedML 0.9.6; {algo} has no "
                          f"FedML counterpart wired into fedbench (use backend=inprocess or ddp for it)")
    opt = cfg.server_optimizer
    if _name(opt) != "sgd" or float(opt.get("lr", 1.0)) != 1.0:
        raise ConfigError(f"server_optimizer: backend=fedml averages the clients' models as FedML's {ALGORITHMS[algo]} "
                          f"does (server_optimizer=sgd with lr 1); got {_name(opt)} with lr {opt.get('lr')}")
    for group, target in DEFAULT_PARTS.items():
        if str(cfg[group].get("_target_")) != target:
            raise ConfigError(f"{group}: backend=fedml runs FedML's star simulator, which has no {group} "
                              f"{_name(cfg[group])}; leave {group} at its default ({target.rsplit('.', 1)[-1]})")
    for knob, allowed in (("momentum", 0), ("weight_decay", 0), ("straggler_fraction", 0), ("dropout", 0)):
        require(float(cfg.get(knob, 0)) == allowed, knob,
                f"{allowed} with backend=fedml (FedML's local SGD and simulators have no such option)", cfg.get(knob))
    require(cfg.get("client_sampling", "auto") in ("auto", "fixed"), "client_sampling", "fixed or auto with "
            "backend=fedml (FedML's simulators train client_num_per_round clients every round)", cfg.get("client_sampling"))
    require(cfg.local_epochs_max is None, "local_epochs_max", "null with backend=fedml (FedML trains every client "
            "local_epochs epochs)", cfg.local_epochs_max)
    require(cfg.eval_every == 1, "eval_every", "1 with backend=fedml (fedbench records FedML's per-round evaluation)",
            cfg.eval_every)
    require(not cfg.stop_at_target, "stop_at_target", "false with backend=fedml (FedML runs all its rounds)",
            cfg.stop_at_target)
    task = cfg.task
    require(str(task.get("_target_")) == CLASSIFIER and task.get("scheduler") is None
            and str(task.optimizer.get("_target_")) == "torch.optim.SGD", "task",
            "the default classifier task with plain SGD and no scheduler with backend=fedml (FedML's trainer is "
            "cross-entropy with SGD)", _name(task))
    require(not task.get("local_buffers", False), "task.local_buffers", "false with backend=fedml",
            task.get("local_buffers"))
    workers = b.workers
    m = clients_per_round(cfg.num_clients, cfg.client_fraction)
    require(workers is None or (is_int(workers) and workers >= 1), "backend.workers", "null or an integer >= 1",
            workers)
    if b.mode == "mpi":
        require(workers is None or workers == m, "backend.workers",
                f"null or the clients per round m = floor(client_fraction * num_clients) = {m} (FedML's MPI simulator "
                f"trains one client per process)", workers)
    device = cfg.get("device", DEFAULT)
    require(device in ("auto", "cpu"), "device", "auto or cpu with backend=fedml (fedbench runs FedML's simulators on "
            "the CPU: using_gpu false)", device)
    threads = b.threads
    require(threads is None or (is_int(threads) and threads >= 1), "backend.threads", "null or an integer >= 1",
            threads)


def processes(cfg: DictConfig) -> int:
    """Processes FedML runs: 1 (sp) or the m client processes plus FedML's server (mpi)."""
    return 1 if cfg.backend.mode == "sp" else clients_per_round(cfg.num_clients, cfg.client_fraction) + 1


def fedml_config(cfg: DictConfig, handoff: str, batch_size: int) -> dict[str, Any]:
    """FedML's own configuration file for this run (FedML reads it with ``--cf``)."""
    algo = _name(cfg.algorithm)
    mpi = cfg.backend.mode == "mpi"
    train = {
        "federated_optimizer": ALGORITHMS[algo],
        "client_id_list": "[]",
        "client_num_in_total": int(cfg.num_clients),
        "client_num_per_round": clients_per_round(cfg.num_clients, cfg.client_fraction),
        "comm_round": int(cfg.rounds),
        "epochs": int(cfg.local_epochs),
        "batch_size": batch_size,
        "client_optimizer": "sgd",
        "learning_rate": float(cfg.lr),
        "weight_decay": 0.0,
    }
    if algo == "fedprox":
        train["fedprox_mu"] = float(cfg.algorithm.mu)
    device = {"using_gpu": False}
    if mpi:
        device.update(worker_num=processes(cfg) - 1, gpu_mapping_file=None, gpu_mapping_key=None)
    return {
        "common_args": {"training_type": "simulation", "random_seed": int(cfg.seed), "using_mlops": False},
        "data_args": {"dataset": "fedbench", "data_cache_dir": handoff, "partition_method": "fedbench"},
        "model_args": {"model": "fedbench"},
        "train_args": train,
        "validation_args": {"frequency_of_the_test": 1},
        "device_args": device,
        "comm_args": {"backend": "MPI" if mpi else "sp"},
        "tracking_args": {"enable_tracking": False, "enable_wandb": False},
    }
