"""Every YAML in conf/ composes and instantiates; the default run trains to the target."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from fedbench.aggregators import Aggregator
from fedbench.algorithms.base import Algorithm
from fedbench.attacks import Attack
from fedbench.backends import Backend
from fedbench.build import task_factory
from fedbench.data.base import FederatedData
from fedbench.loggers import Logger
from fedbench.privacy import Privacy
from fedbench.server_optimizers import ServerOptimizer
from fedbench.topology import Topology
from tests.conftest import CONF
from tests.fake_federated import write_cifar100, write_hf_images, write_leaf_femnist, write_leaf_shakespeare
from tests.fake_vision import write_cifar10, write_mnist

GROUPS = ("algorithm", "dataset", "partitioner", "model", "backend", "logger", "server_optimizer", "task", "paradigm",
          "topology", "compressor", "aggregator", "attack", "privacy")
OPTIONS = sorted((p.parent.name, p.stem) for p in CONF.glob("*/*.yaml") if p.parent.name in GROUPS)
STUDIES = sorted(p.stem for p in CONF.glob("study/*.yaml"))
GLOBAL_GROUPS = ("arm", "fedavg_arch", "leaf_arm", "fedopt_task")  # @package _global_ option groups that studies sweep with "+group=option"
GLOBAL_OPTIONS = sorted(f"{p.parent.name}/{p.stem}.yaml" for g in GLOBAL_GROUPS for p in CONF.glob(f"{g}/*.yaml"))
LAUNCHERS = sorted(p.stem for p in CONF.glob("hydra/launcher/*.yaml"))
HPO_PRESETS = sorted(p.stem for p in CONF.glob("hpo/*.yaml"))  # checked by tests/test_hpo.py


def test_every_yaml_is_covered():
    covered = {f"{g}/{o}.yaml" for g, o in OPTIONS} | {f"study/{s}.yaml" for s in STUDIES} | \
        {f"hydra/launcher/{n}.yaml" for n in LAUNCHERS} | {"config.yaml", "local.example/slurm.yaml"} | set(GLOBAL_OPTIONS) | \
        {f"hpo/{n}.yaml" for n in HPO_PRESETS}
    assert {str(p.relative_to(CONF)) for p in CONF.rglob("*.yaml")} == covered
EXPECTED_TYPE = {"algorithm": Algorithm, "backend": Backend, "dataset": FederatedData, "server_optimizer": ServerOptimizer,
                 "topology": Topology, "aggregator": Aggregator}
NONE_OR = {"attack": Attack, "privacy": Privacy}  # groups whose "none" option builds None
# compressor options are checked through build_channel (their direction / error_feedback keys are the channel's)


@pytest.fixture
def vision_root(tmp_path, monkeypatch) -> Path:
    import torchvision.datasets.cifar as tv_cifar

    write_mnist(tmp_path), write_mnist(tmp_path, folder="FashionMNIST"), write_cifar10(tmp_path)
    write_cifar100(tmp_path), write_leaf_femnist(tmp_path), write_leaf_shakespeare(tmp_path)
    if HF:
        write_hf_images(tmp_path / "hf")
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    return tmp_path


def _has_hf() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("datasets", "flwr_datasets"))


HF = _has_hf()  # the optional extra (uv sync --extra hf)
NEEDS_HF = {("dataset", "hf"), ("partitioner", "flwr")}


def data_overrides(option: str, root: Path) -> list[str]:
    """Where the test's fake files of a dataset option lie."""
    if option in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        return [f"dataset.root={root}"]
    if option in ("femnist", "shakespeare"):
        return [f"dataset.root={root / option / 'data'}"]
    if option == "hf":
        return [f"dataset.path={root / 'hf'}", "dataset.image_key=image", "dataset.label_key=character",
                "dataset.test_split=null"]
    return []


# studies whose data the test writes small: (overrides), e.g. the users its fake LEAF files hold
STUDY_OVERRIDES = {
    "fedavg_mnist": lambda root: [f"dataset.root={root}", "num_clients=20"],  # 60 fake images: 3 per client
    "leaf_femnist": lambda root: [f"dataset.root={root / 'femnist' / 'data'}", "num_clients=3", "clients_per_round=3"],
    "leaf_shakespeare": lambda root: [f"dataset.root={root / 'shakespeare' / 'data'}", "num_clients=2",
                                      "clients_per_round=2"],
    "fedopt_reddi": lambda root: [f"dataset.root={root}", "num_clients=5", "clients_per_round=5"],
}


def test_every_group_has_options():
    groups = {g for g, _ in OPTIONS}
    assert {"algorithm", "dataset", "partitioner", "model", "backend", "logger"} <= groups


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(make_cfg, vision_root, tmp_path, group, option):
    if (group, option) in NEEDS_HF and not HF:
        pytest.skip("the optional extra hf is not installed (uv sync --extra hf)")
    extra = data_overrides(option, vision_root) if group == "dataset" else []
    cfg = make_cfg(f"{group}={option}", *extra)
    if group == "paradigm":  # an @package _global_ group: its name and the runner run() calls
        assert cfg.paradigm == option and callable(instantiate(cfg.runner))
        return
    if group == "compressor":
        from fedbench.compress.channel import build_channel

        channel = build_channel(cfg.compressor, 0, [(200, 64), (200,)])
        assert (channel is None) == (option == "none")
        return
    if group == "backend" and "runner" in cfg.backend:  # runs the experiment itself (backend=fedml)
        assert callable(instantiate(cfg.backend.runner))
        return
    part = task_factory(cfg.task) if group == "task" else instantiate(cfg[group])
    if group == "backend" and part.name == "ddp":  # a 1-process gloo group: tear it down again
        import torch.distributed as dist

        assert (part.rank, part.world_size) == (0, 1)
        dist.destroy_process_group()
    if group in EXPECTED_TYPE:
        assert isinstance(part, EXPECTED_TYPE[group])
    elif group in NONE_OR:
        assert part is None if option == "none" else isinstance(part, NONE_OR[group])
    elif group == "model":
        # the character LSTM reads token sequences; cifar_cnn is built for colour images
        shape = {"char_lstm": (80,), "cifar_cnn": (3, 32, 32)}.get(option, (1, 28, 28))
        assert sum(p.numel() for p in part(input_shape=shape, num_classes=10).parameters()) > 0
    elif group == "partitioner":
        assert callable(part)
    elif group == "logger":
        assert isinstance(part(str(tmp_path / "log"), {}), Logger)
    elif group == "task":
        from lightning import LightningModule
        from torch import nn

        assert isinstance(part(model=nn.Linear(2, 2)), LightningModule)


def test_mcmahan_model_sizes():
    from fedbench.tasks.models import cnn, mlp

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(mlp((1, 28, 28), 10)) == 199_210  # "2NN" on MNIST
    assert count(cnn((1, 28, 28), 10)) == 1_663_370  # McMahan et al.'s CNN on MNIST


def _sweep(study: str) -> list[list[str]]:
    """Every job's overrides of a study's sweep (the basic sweeper's cartesian product)."""
    import itertools

    from omegaconf import OmegaConf

    params = OmegaConf.select(OmegaConf.load(CONF / "study" / f"{study}.yaml"), "hydra.sweeper.params") or {}
    axes = [[f"{k}={v.strip()}" for v in str(values).split(",")] for k, values in params.items()]
    return [list(combo) for combo in itertools.product(*axes)]


@pytest.mark.parametrize("study", STUDIES)
def test_study_composes_and_builds(make_cfg, vision_root, study):
    import torch.distributed as dist

    from fedbench.build import build
    from fedbench.validate import validate_knobs

    jobs = _sweep(study)
    root = STUDY_OVERRIDES[study](vision_root) if study in STUDY_OVERRIDES else []
    for job in jobs:  # every job of the grid composes and passes the knob checks
        validate_knobs(make_cfg(f"+study={study}", *root, *job))
    cfg = make_cfg(f"+study={study}", *root, *jobs[0])
    exp = build(cfg)
    if dist.is_initialized():
        dist.destroy_process_group()
    assert exp.algorithm.name and len(exp.parts) == cfg.num_clients


def test_every_global_option_is_swept_by_a_study():
    swept = {f"{o.split('=')[0].lstrip('+')}/{o.split('=')[1]}.yaml" for s in STUDIES for job in _sweep(s) for o in job}
    assert set(GLOBAL_OPTIONS) <= swept


def test_weak_scaling_keeps_clients_per_worker():
    for workers in (1, 2, 4):
        from tests.conftest import compose_config

        cfg = compose_config(["+study=weak_scaling", f"backend.workers={workers}"], Path("/tmp/unused"))
        assert int(cfg.client_fraction * cfg.num_clients) == 4 * workers


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_launcher_composes_with_site_overrides(launcher, tmp_path):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    launcher_cfg = cfg.hydra.launcher
    expected = {"submitit_slurm": "SlurmLauncher", "submitit_local": "LocalLauncher", "dask": "DaskLauncher"}
    assert launcher_cfg._target_.endswith(expected[launcher])
    if launcher == "dask":  # instantiating connects to nothing (the cluster is opened by launch())
        assert type(instantiate(launcher_cfg)).__name__ == "DaskLauncher"
        assert launcher_cfg.resources == {"cpu": 1} and launcher_cfg.address is None
        return
    assert launcher_cfg.name == "fedbench"
    if launcher == "submitit_slurm":  # every key of the documented site example is a valid launcher key
        example = OmegaConf.load(CONF / "local.example" / "slurm.yaml")
        assert set(example) <= set(launcher_cfg)


@pytest.mark.parametrize("study,arm,key,value", [
    ("local_epochs", "fedavg_e4", "local_epochs", 4), ("noniid_lr_fraction", "lr0001_c05", "client_fraction", 0.5),
    ("communication", "parameter_server_sgd", "client_fraction", 1.0), ("fedavg_mnist", "cnn", "local_epochs", 5),
    ("topologies", "topo_async", "rounds", 60), ("topologies", "topo_hierarchical", "rounds", 15)])
def test_swept_arms_win_over_the_study_defaults(study, arm, key, value):
    from tests.conftest import compose_config

    group = "fedavg_arch" if study == "fedavg_mnist" else "arm"
    assert compose_config([f"+study={study}", f"{group}={arm}"], Path("/tmp/unused"))[key] == value
