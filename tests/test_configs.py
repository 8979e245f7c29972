"""Every YAML in conf/ composes and instantiates; the default run trains to the target."""

from pathlib import Path

import pytest
from hydra.utils import instantiate

from fedbench.algorithms.base import Algorithm
from fedbench.backends import Backend
from fedbench.data.base import FederatedData
from fedbench.loggers import Logger
from tests.conftest import CONF
from tests.fake_vision import write_cifar10, write_mnist

OPTIONS = sorted((p.parent.name, p.stem) for p in CONF.glob("*/*.yaml") if p.parent.name != "hydra")
EXPECTED_TYPE = {"algorithm": Algorithm, "backend": Backend, "dataset": FederatedData}


@pytest.fixture
def vision_root(tmp_path, monkeypatch) -> Path:
    import torchvision.datasets.cifar as tv_cifar

    write_mnist(tmp_path), write_mnist(tmp_path, folder="FashionMNIST"), write_cifar10(tmp_path)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    return tmp_path


def test_every_group_has_options():
    groups = {g for g, _ in OPTIONS}
    assert {"algorithm", "dataset", "partitioner", "model", "backend", "logger"} <= groups


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(make_cfg, vision_root, tmp_path, group, option):
    extra = [f"dataset.root={vision_root}"] if group == "dataset" and option in ("mnist", "fashion_mnist", "cifar10") else []
    cfg = make_cfg(f"{group}={option}", *extra)
    part = instantiate(cfg[group])
    if group in EXPECTED_TYPE:
        assert isinstance(part, EXPECTED_TYPE[group])
    elif group == "model":
        assert sum(p.numel() for p in part(input_shape=(1, 28, 28), num_classes=10).parameters()) > 0
    elif group == "partitioner":
        assert callable(part)
    elif group == "logger":
        assert isinstance(part(str(tmp_path / "log"), {}), Logger)


def test_mcmahan_model_sizes():
    from fedbench.tasks.models import cnn, mlp

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(mlp((1, 28, 28), 10)) == 199_210  # "2NN" on MNIST
    assert count(cnn((1, 28, 28), 10)) == 1_663_370  # McMahan et al.'s CNN on MNIST
