"""Instantiate the parts of a run from its config (every part checks its own options) into an
:class:`~fedbench.experiment.Experiment`."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from lightning import LightningModule
from omegaconf import DictConfig, OmegaConf

from fedbench import compat
from fedbench.algorithms.base import Algorithm
from fedbench.backends.base import Backend
from fedbench.client import ClientPlan
from fedbench.client_eval import plan_client_eval
from fedbench.compress.channel import build_channel
from fedbench.data.base import FederatedData
from fedbench.device import run_device, to_device
from fedbench.experiment import Experiment
from fedbench.local import collecting_logs
from fedbench.attacks import flip_labels
from fedbench.errors import ConfigError, require
from fedbench.network import Network
from fedbench.params import get_buffers
from fedbench.partition.columns import partition_data
from fedbench.partition.common import label_counts
from fedbench.sampling import resolve_sampling
from fedbench.parts import build_part
from fedbench.seeding import derive_seed
from fedbench.threat_model import build_threat_model
from fedbench.topology.base import Topology
from fedbench.validate import validate_sizes
from fedbench.workload import speed_factors


def check_server_optimizer(cfg: DictConfig) -> None:
    """An algorithm whose config has no ``server_optimizer`` key has a server step of its own
    (FedSGD, FedADMM): any server optimizer but the default plain SGD with lr 1 is refused."""
    if "server_optimizer" in cfg.algorithm:
        return
    opt = build_part(cfg.server_optimizer)
    if not opt.replaces:
        raise ConfigError(f"server_optimizer: algorithm {cfg.algorithm._target_.rsplit('.', 1)[-1]} has its own "
                          f"server step and takes no server optimizer; leave server_optimizer=sgd with lr 1 "
                          f"(got {opt.name} {opt.options})")


def build(cfg: DictConfig) -> Experiment:
    """Build every part (each checks its own options), check that they run together (:mod:`fedbench.compat`), load and
    partition the data; no training yet. ``run`` validates the flat knobs before calling this."""
    t_build = time.perf_counter()
    algorithm: Algorithm = build_part(cfg.algorithm)
    check_server_optimizer(cfg)
    topology: Topology = build_part(cfg.topology)
    topology.check(cfg, algorithm)
    compat.check_topology(cfg, algorithm, topology)
    threat = build_threat_model(cfg)
    compat.check_threat(cfg, algorithm, topology, threat)
    privacy = threat.privacy
    sampling = resolve_sampling(cfg.get("client_sampling", "auto"), privacy.client_sampling if privacy else None)
    if privacy is not None:
        privacy.check_sampling(sampling)
    partitioner = build_part(cfg.partitioner)
    network: Network = build_part(cfg.network)
    backend: Backend = build_part(cfg.backend)
    device = run_device(cfg)
    t_data = time.perf_counter()
    data: FederatedData = build_part(cfg.dataset)
    validate_sizes(cfg.num_clients, len(data.y_train))
    parts = partition_data(partitioner, data, cfg.num_clients, cfg.seed)
    parts, client_eval = plan_client_eval(cfg.get("eval"), data, parts, cfg.seed, device, topology.name,
                                          topology.capabilities.evaluates_clients)
    client_data = [(data.x_train[p].contiguous(), data.y_train[p].contiguous()) for p in parts]
    if threat.attack is not None and threat.attack.flips_labels:
        client_data = [(x, flip_labels(y, data.num_classes) if c in threat.byzantine else y)
                       for c, (x, y) in enumerate(client_data)]
    data_s = time.perf_counter() - t_data
    task = build_task(cfg, data)
    # moved once, by the same calls on every device (no copy where the tensors already are); the training data
    # itself stays on the CPU, for partition statistics
    client_data = to_device(client_data, device)
    data = replace(data, x_test=data.x_test.to(device), y_test=data.y_test.to(device))
    task = task.to(device)
    check_batch_norm(task, [len(p) for p in parts], cfg.batch_size)
    check_inputs(task, client_data[0], cfg.model.get("_target_", "?"))
    local_buffers = bool(cfg.task.get("local_buffers", False))
    compat.check_model(task, topology, threat, local_buffers, get_buffers(task) is not None)
    plan = ClientPlan(cfg.batch_size, cfg.seed, cfg.lr, privacy.client_dp if privacy is not None else None)
    speeds = speed_factors(cfg.num_clients, cfg.seed, cfg.client_speed.sigma, cfg.client_speed.factors)
    exp = Experiment(data, parts, client_data, task, algorithm, backend, plan, network, speeds,
                     local_buffers, topology, cfg.client_speed.step_time_s,
                     build_channel(cfg.compressor, cfg.seed, [tuple(p.shape) for p in task.parameters()]), threat,
                     device, sampling, client_eval)
    if backend.check is not None:  # e.g. backend=vectorized refuses what it cannot run, before any round
        backend.check(exp)
    exp.timings.update(data_s=data_s, build_s=time.perf_counter() - t_build - data_s)
    return exp


def build_task(cfg: DictConfig, data: FederatedData) -> LightningModule:
    """The ``task`` LightningModule around the ``model`` group's network, initialised from the seed
    (the same initial model in every paradigm and backend). ``task.local_buffers`` is fedbench's own
    knob, not the module's."""
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_part(cfg.model)(input_shape=data.input_shape, num_classes=data.num_classes)
    task = task_factory(cfg.task)(model=model)
    require(isinstance(task, LightningModule), "task", "a LightningModule factory (_partial_: true)", type(task).__name__)
    return task


def task_factory(node: DictConfig) -> Any:
    """The ``task`` config's ``model -> LightningModule`` factory (``local_buffers`` checked and left out)."""
    spec = OmegaConf.to_container(node, resolve=True)
    local_buffers = spec.pop("local_buffers", False)
    require(isinstance(local_buffers, bool), "task.local_buffers", "true or false", local_buffers)
    return build_part(OmegaConf.create(spec), field="task")


def check_batch_norm(task: LightningModule, sizes: list[int], batch_size: int | None) -> None:
    """BatchNorm cannot train on a batch of one sample: refuse, before training, a batch size that
    leaves some client a last batch of one."""
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in task.modules()):
        return
    bad = [n for n in sizes if (n if batch_size is None or batch_size >= n else n % batch_size) == 1]
    require(not bad, "batch_size", f"a size that leaves no client a last batch of 1 sample with a BatchNorm model "
            f"({len(bad)} client(s) have such a size, e.g. {bad[0] if bad else 0} samples)", batch_size)


def check_inputs(task: LightningModule, sample: tuple[torch.Tensor, torch.Tensor], model: str) -> None:
    """One evaluation step on two of a client's samples before any training: a model that cannot take the dataset's
    inputs (shape, channels, classes) is refused with the reason, not discovered in round 1."""
    x, y = sample
    was_training = task.training
    task.eval()
    try:
        with torch.no_grad(), collecting_logs(task):
            task.validation_step((x[:2], y[:2]), 0)
    except Exception as err:  # noqa: BLE001 - the model's own error says what does not fit
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"model: {model.rsplit('.', 1)[-1]} cannot take this dataset's samples (inputs of shape "
                          f"{tuple(x.shape[1:])}, {type(err).__name__}: {first})") from None
    finally:
        task.train(was_training)


def save_partition(exp: Experiment, output_dir: Path) -> None:
    """Write each client's size and label counts to ``partition.json`` (for non-IID plots)."""
    counts = label_counts(exp.data.train_labels, exp.parts, exp.data.num_classes)
    payload = {"num_classes": exp.data.num_classes, "label_counts": counts.tolist(), "sizes": counts.sum(1).tolist()}
    (output_dir / "partition.json").write_text(json.dumps(payload) + "\n")
