"""Every bad input of the run-integrity issue (cases 6 and 7) gets one clear ConfigError naming the
field, before any work: types checked against each part's factory signature, ranges by the factories,
typo'd new keys refused, and a forked ddp worker's ConfigError reported like the parent's."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fedbench.errors import ConfigError
from fedbench.run import run
from tests.conftest import ROOT, compose_config

CASES = [
    (["seed=-1"], "seed must be an integer >= 0 (got -1)"),
    (["model.hidden=abc"], "model.hidden must be a list of integers (got 'abc')"),
    (["model.hidden=[0]"], "model.hidden must be a list of layer widths, each an integer >= 1"),
    (["partitioner=dirichlet", "partitioner.alpha=abc"], "partitioner.alpha must be a number (got 'abc')"),
    (["network.latency_s=slow"], "network.latency_s must be a number (got 'slow')"),
    (["dataset.split_seed=abc"], "dataset.split_seed must be an integer (got 'abc')"),
    (["algorithm=fedsgd", "algorithm.lr=fast"], "algorithm.lr must be a number (got 'fast')"),
    (["dataset=synthetic", "partitioner=natural", "num_clients=30", "model=cnn"],
     "model: cnn needs image inputs (channels, height, width)"),
    (["backend=ddp", "backend.backend=nccl"], "backend.backend must be auto or gloo on a machine without a CUDA GPU"),
    (["+partitioner.alpah=1"], "partitioner.alpah is not an option of partitioner (iid)"),
    (["aggregator=krum", "aggregator.f=1.5"], "aggregator.f must be an integer (got 1.5)"),
]


@pytest.mark.parametrize("overrides,message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_clear_error_before_any_work(tmp_path, overrides, message):
    if overrides == ["backend=ddp", "backend.backend=nccl"]:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA machine may use NCCL")
    cfg = compose_config(overrides, tmp_path / "run")
    with pytest.raises(ConfigError, match=re.escape(message)):
        run(cfg)
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_a_typod_new_key_is_refused_and_a_deliberate_one_allowed(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("+lrr=0.5: 'lrr' is not a fedbench setting or config group")):
        compose_config(["+lrr=0.5"], tmp_path / "run")
    assert compose_config(["++my_note=hello"], tmp_path / "run").my_note == "hello"


def test_mnist_files_of_random_bytes(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(bytes(range(256)) * 20)
    cfg = compose_config(["dataset=mnist", f"dataset.root={tmp_path}"], tmp_path / "run")
    with pytest.raises(ConfigError, match=re.escape("the mnist files under MNIST/raw/ cannot be read")):
        run(cfg)


@pytest.mark.slow
def test_cli_bad_inputs_exit_2_without_traceback_also_from_forked_workers(tmp_path):
    for args in (["+lrr=0.5"], ["backend=ddp", "backend.workers=2", "partitioner=dirichlet", "partitioner.alpha=-1"]):
        proc = subprocess.run([sys.executable, "-m", "fedbench", "rounds=1", *args, f"hydra.run.dir={tmp_path / 'r'}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and "fedbench: invalid configuration:" in proc.stderr
    assert "partitioner.alpha must be > 0 (got -1)" in proc.stderr
    assert not Path(tmp_path / "r" / "metrics.csv").exists()
