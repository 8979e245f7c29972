"""Shared fixtures: compose the real config (then shrink it) exactly as the CLI would."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import pytest
from omegaconf import DictConfig

from fedbench.config import compose

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_MNIST = ROOT.parent / "shared" / "data"


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """The composed config for ``overrides`` with ``output_dir`` set (no Hydra run needed)."""
    return compose(overrides, output_dir)


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.gpu`` tests need a CUDA GPU: skipped, saying so, on machines without one (CI has none)."""
    import torch

    if torch.cuda.device_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; this machine has none (device check: benchmarks/gpu.sh)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg("algorithm=fedsgd", ...)`` -> composed config writing into a fresh tmp dir."""
    counter = iter(range(1000))

    def make(*overrides: str) -> DictConfig:
        return compose_config(list(overrides), tmp_path / f"run{next(counter)}")

    return make


@pytest.fixture(autouse=True)
def _quiet_logs():
    logging.getLogger("fedbench").setLevel(logging.WARNING)
    yield
