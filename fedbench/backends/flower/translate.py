"""fedbench's config -> one of Flower 1.42's own strategies (``flwr.serverapp.strategy``) and its options, with
everything Flower cannot run as asked refused by name before any work (no environment built, no data loaded,
nothing written).

Where Flower's strategy fixes a convention that fedbench leaves configurable, the config must name Flower's value
(the error says which override to add): then both compute the same update, and ``tests/test_flower_backend.py``
checks that they do.

=============  ==========================================  =================================================
Flower         fedbench config                             conventions that must match
=============  ==========================================  =================================================
FedAvg         fedavg, server_optimizer=sgd lr 1            weights by ``num-examples`` (= fedbench's n_k)
FedAvgM        fedavgm (momentum), or sgd with lr != 1     v_1 = g (fedbench: v_0 = 0, the same)
FedAdam        fedadam                                     bias_correction=flower, initial_accumulator=0
FedYogi        fedyogi                                     bias_correction=false, initial_accumulator=0
FedAdagrad     fedadagrad                                  beta1=0 (no first moment), bias_correction=false,
                                                           initial_accumulator=0
FedProx        fedprox, sgd lr 1                           mu/2 ||w - w_t||^2 added to each local loss
QFedAvg        qfedavg                                     L = 1 / algorithm.lr; F_k(w^t) is the client's loss
                                                           at the received model, sent as "start-loss"; +1e-10
Krum           aggregator=krum (m = 1)                     f = num_malicious_nodes; float32 distances
MultiKrum      aggregator=krum_rule m > 1                  weighted=true (Flower weights by num-examples);
                                                           m <= clients per round - f
FedMedian      aggregator=median                           -
FedTrimmedAvg  aggregator=trimmed_mean                     beta (both cut floor(beta n) at each end)
=============  ==========================================  =================================================
"""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from fedbench.device import DEFAULT
from fedbench.errors import ConfigError, require
from fedbench.parts import build_part
from fedbench.sampling import clients_per_round
from fedbench.validate import is_int, is_num

ALGORITHMS = ("fedavg", "fedprox", "qfedavg")  # fedbench's factories (fedavgm, fedadam, ... are presets of fedavg)
STRATEGIES = ("FedAvg", "FedProx", "FedAvgM", "FedAdam", "FedYogi", "FedAdagrad", "QFedAvg", "Krum", "MultiKrum",
              "FedMedian", "FedTrimmedAvg")
START_LOSS = "start-loss"  # the MetricRecord key of a client's loss at the received model (QFedAvg's F_k(w^t))
DEFAULT_PARTS = {
    "topology": ("fedbench.topology.star.star", "Flower's ServerApp runs a star: one server, clients per round"),
    "compressor": ("fedbench.compress.none.none", "Flower's strategies send fp32 ArrayRecords (no compression)"),
    "attack": ("fedbench.attacks.none", "fedbench's attacks live in its own round pipeline, not in Flower's"),
    "privacy": ("fedbench.privacy.none", "fedbench's DP mechanisms and accountants are not Flower's DP wrappers"),
}
CLASSIFIER = "fedbench.tasks.classifier.ClassifierTask"
ROBUST = {"median": "FedMedian", "trimmed": "FedTrimmedAvg", "krum_rule": "Krum"}


def _name(node: Any) -> str:
    return str(node.get("_target_", "?")).rsplit(".", 1)[-1]


def check(cfg: DictConfig) -> None:
    """Raise ConfigError for anything ``backend=flower`` cannot run as asked."""
    require(cfg.get("paradigm", "federated") == "federated", "paradigm", "federated with backend=flower",
            cfg.get("paradigm"))
    for group, (target, why) in DEFAULT_PARTS.items():
        if str(cfg[group].get("_target_")) != target:
            raise ConfigError(f"{group}: backend=flower cannot run {group} {_name(cfg[group])} ({why}); leave {group} "
                              f"at its default ({target.rsplit('.', 1)[-1]}) or use backend=inprocess")
    strategy(cfg)  # refuses algorithms, server optimizers and aggregators Flower has no strategy for
    _check_knobs(cfg)
    _check_task(cfg)
    _check_resources(cfg)


def _check_knobs(cfg: DictConfig) -> None:
    for knob, why in (("straggler_fraction", "every client Flower trains runs all its epochs"),
                      ("dropout", "every client Flower samples replies")):
        require(float(cfg.get(knob, 0)) == 0, knob, f"0 with backend=flower ({why})", cfg.get(knob))
    require(cfg.get("client_sampling", "auto") in ("auto", "fixed"), "client_sampling", "fixed or auto with "
            "backend=flower (Flower's strategies train a fixed number of nodes per round)", cfg.get("client_sampling"))
    require(cfg.local_epochs_max is None, "local_epochs_max", "null with backend=flower (each client trains "
            "local_epochs epochs)", cfg.local_epochs_max)
    require(not cfg.stop_at_target, "stop_at_target", "false with backend=flower (Flower's strategy runs all its "
            "rounds)", cfg.stop_at_target)
    per_client = (cfg.get("eval") or {}).get("per_client", "auto")
    require(per_client in ("auto", False), "eval.per_client", "auto or false with backend=flower (Flower's "
            "ServerApp evaluates the global model on the test set; no per-client evaluation)", per_client)


def _check_task(cfg: DictConfig) -> None:
    task = cfg.task
    require(str(task.get("_target_")) == CLASSIFIER and task.get("scheduler") is None
            and str(task.optimizer.get("_target_")) == "torch.optim.SGD", "task",
            "the default classifier task with SGD and no scheduler with backend=flower (its ClientApp trains "
            "cross-entropy with torch.optim.SGD)", _name(task))
    require(not task.get("local_buffers", False), "task.local_buffers", "false with backend=flower",
            task.get("local_buffers"))


def _check_resources(cfg: DictConfig) -> None:
    b = cfg.backend
    require(is_num(b.client_cpus) and b.client_cpus > 0, "backend.client_cpus", "> 0", b.client_cpus)
    require(is_num(b.client_gpus) and b.client_gpus >= 0, "backend.client_gpus", ">= 0", b.client_gpus)
    for knob in ("cpus", "gpus", "threads"):
        value = b.get(knob)
        require(value is None or (is_int(value) and value >= (0 if knob == "gpus" else 1)), f"backend.{knob}",
                "null or an integer >= " + ("0" if knob == "gpus" else "1"), value)
    device = str(cfg.get("device", DEFAULT))
    require(device in ("auto", "cpu", "cuda"), "device", "auto, cpu or cuda with backend=flower (Ray gives each "
            "client actor its GPUs; backend.client_gpus says how many)", device)
    if device == "cpu":
        require(b.client_gpus == 0, "backend.client_gpus", "0 with device=cpu", b.client_gpus)
    if device == "cuda":
        require(b.client_gpus > 0, "backend.client_gpus", "> 0 with device=cuda (Ray assigns GPUs to client actors "
                "by their client_gpus)", b.client_gpus)
    if b.client_gpus > 0 and not torch.cuda.is_available():
        raise ConfigError(f"backend.client_gpus: {b.client_gpus} GPUs per client asked, and torch sees no GPU here "
                          f"(Ray would wait for them forever); use backend.client_gpus=0")


def strategy(cfg: DictConfig) -> dict[str, Any]:
    """Flower's strategy for this config: ``{"name": one of STRATEGIES, "options": its keyword arguments}``."""
    algo, opt, agg = _name(cfg.algorithm), cfg.server_optimizer, cfg.aggregator
    if algo not in ALGORITHMS:
        raise ConfigError(f"algorithm: backend=flower runs Flower's strategies {list(STRATEGIES)}; fedbench's {algo} "
                          f"has no Flower strategy (fedavg and its presets fedavgm, fedadam, fedyogi, fedadagrad, "
                          f"fedprox and qfedavg do); use backend=inprocess for it")
    plain = _name(opt) == "sgd" and float(opt.lr) == 1.0
    if _name(agg) != "mean":
        require(algo == "fedavg" and plain, "aggregator", f"the mean with {algo} and server_optimizer={_name(opt)} "
                "(Flower's robust strategies average the clients' models as FedAvg does, without a server optimizer)",
                _name(agg))
        return _robust(cfg, agg)
    if algo == "qfedavg":  # its own server step: no server optimizer (robust aggregators were refused above)
        return {"name": "QFedAvg", "options": {"client_learning_rate": float(cfg.algorithm.lr),
                                               "q": float(cfg.algorithm.q), "train_loss_key": START_LOSS}}
    if algo == "fedprox":
        require(plain, "server_optimizer", "sgd with lr 1 with algorithm=fedprox (Flower's FedProx averages as "
                "FedAvg does)", f"{_name(opt)} lr {opt.get('lr')}")
        return {"name": "FedProx", "options": {"proximal_mu": float(cfg.algorithm.mu)}}
    return _fedopt(cfg, opt, plain)


def _fedopt(cfg: DictConfig, opt: Any, plain: bool) -> dict[str, Any]:
    kind = _name(opt)
    if plain:
        return {"name": "FedAvg", "options": {}}
    if kind in ("sgd", "momentum"):
        return {"name": "FedAvgM", "options": {"server_learning_rate": float(opt.lr),
                                               "server_momentum": float(opt.get("momentum", 0.0))}}
    names = {"adam": "FedAdam", "yogi": "FedYogi", "adagrad": "FedAdagrad"}
    if kind not in names:
        raise ConfigError(f"server_optimizer: backend=flower has no Flower strategy for server_optimizer={kind}")
    name = names[kind]
    _conventions(opt, name, CONVENTIONS[kind])
    options = {"eta": float(opt.lr), "eta_l": float(cfg.lr), "tau": float(opt.tau)}
    if kind != "adagrad":  # Flower's FedAdagrad fixes beta_1 = 0 (and has no beta_2)
        options.update(beta_1=float(opt.beta1), beta_2=float(opt.beta2))
    return {"name": name, "options": options}


# server optimizer -> (fedbench option, Flower's value, what Flower's strategy does)
CONVENTIONS = {
    "adam": (("bias_correction", "flower", "corrects the bias with exponent server_round + 1"),
             ("initial_accumulator", 0.0, "starts v at 0")),
    "yogi": (("bias_correction", False, "has no bias correction"), ("initial_accumulator", 0.0, "starts v at 0")),
    "adagrad": (("bias_correction", False, "has no bias correction"), ("initial_accumulator", 0.0, "starts v at 0"),
                ("beta1", 0.0, "has no first moment (beta_1 fixed at 0)")),
}


def _conventions(opt: Any, name: str, conventions: tuple[tuple[str, Any, str], ...]) -> None:
    """Refuse, naming every override at once, a server optimizer whose conventions differ from Flower's ``name``."""
    wrong = []
    for key, flower, what in conventions:
        value = opt.get(key)
        same = value == flower if isinstance(flower, (bool, str)) else value is not None and float(value) == flower
        if not same:
            wrong.append((key, str(flower).lower() if isinstance(flower, bool) else flower, what, value))
    if wrong:
        raise ConfigError(f"server_optimizer.{wrong[0][0]}: backend=flower runs Flower's {name}, which "
                          + "; ".join(f"{what} (server_optimizer.{key}={v}, got {got})" for key, v, what, got in wrong)
                          + ". Add " + " ".join(f"server_optimizer.{key}={v}" for key, v, _, _ in wrong)
                          + f" to run Flower's {name} (the same math), or use backend=inprocess for fedbench's "
                          "convention")


def _robust(cfg: DictConfig, agg: Any) -> dict[str, Any]:
    kind = _name(agg)
    if kind not in ROBUST:
        raise ConfigError(f"aggregator: backend=flower has Flower's Krum, MultiKrum, FedMedian and FedTrimmedAvg "
                          f"(aggregator=krum, multi_krum, median, trimmed_mean); {build_part(agg).name} has no Flower "
                          f"strategy")
    if kind == "median":
        return {"name": "FedMedian", "options": {}}
    if kind == "trimmed":
        return {"name": "FedTrimmedAvg", "options": {"beta": float(agg.beta)}}
    f, m = int(agg.f), int(agg.m)
    n = clients_per_round(cfg.num_clients, cfg.client_fraction)
    require(n >= 2 * f + 3, "aggregator.f", f"<= {max((n - 3) // 2, 0)}: Krum needs n > 2f + 2 uploads per round "
            f"(n = {n} clients per round)", f)
    if m == 1:
        return {"name": "Krum", "options": {"num_malicious_nodes": f}}
    require(bool(agg.weighted), "aggregator.weighted", "true with backend=flower (Flower's MultiKrum weights the "
            "selected models by num-examples)", agg.weighted)
    require(m <= n - f, "aggregator.m", f"<= the clients per round minus f = {n - f} with backend=flower (Flower's "
            f"MultiKrum selects exactly m)", m)
    return {"name": "MultiKrum", "options": {"num_malicious_nodes": f, "num_nodes_to_select": m}}
