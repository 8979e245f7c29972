"""backend=ddp under torchrun (2 CPU processes, gloo) gives the in-process numbers."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fedbench.backends.ddp import rank_and_world
from fedbench.run import run
from tests.conftest import ROOT, compose_config

TORCHRUN = Path(sys.executable).parent / "torchrun"


def test_rank_and_world_from_launcher_environments(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "SLURM_NTASKS", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    assert rank_and_world() == (0, 1)
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3"), monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert rank_and_world() == (3, 4)
    monkeypatch.setenv("SLURM_PROCID", "1"), monkeypatch.setenv("SLURM_NTASKS", "2")
    assert rank_and_world() == (1, 2)
    monkeypatch.setenv("RANK", "0"), monkeypatch.setenv("WORLD_SIZE", "2")
    assert rank_and_world() == (0, 2)  # torchrun's variables win


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["fedavg", "scaffold"])
def test_torchrun_two_processes_match_inprocess(tmp_path, algorithm):
    args = [f"algorithm={algorithm}", "rounds=3", "num_clients=10", "client_fraction=0.5", "partitioner=dirichlet"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_PORT")}
    port = str(29500 + (os.getpid() + len(algorithm)) % 1000)
    proc = subprocess.run([str(TORCHRUN), "--nproc_per_node", "2", "--master_port", port, "-m", "fedbench",
                           "backend=ddp", *args, f"hydra.run.dir={tmp_path / 'ddp'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert_matches_inprocess(args, tmp_path / "ddp", tmp_path / "inprocess")


def assert_matches_inprocess(args: list[str], ddp_dir: Path, ref_dir: Path) -> None:
    """Per-round accuracy and final parameters of a distributed run equal an in-process run's (1e-5)."""
    threads = torch.get_num_threads()
    try:  # each rank runs with one thread: the same float reduction order
        ref = run(compose_config([*args, "backend.threads=1"], ref_dir))
    finally:
        torch.set_num_threads(threads)
    with (ddp_dir / "metrics.csv").open() as f:
        ddp_acc = [float(r["test_accuracy"]) for r in csv.DictReader(f)]
    assert ddp_acc == pytest.approx([r["test_accuracy"] for r in ref.rows], abs=1e-5)
    ddp_params = torch.load(ddp_dir / "checkpoint" / "checkpoint.pt", weights_only=True)["server"]["params"]
    diff = (ddp_params - ref.server["params"]).abs().max().item()
    assert diff <= 1e-5, f"max parameter difference {diff}"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI's mpirun is not installed (apt-get install openmpi-bin)")
def test_mpirun_two_processes_match_inprocess(tmp_path):
    args = ["algorithm=scaffold", "rounds=3", "num_clients=10", "client_fraction=0.5", "partitioner=dirichlet"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_PORT")}
    port = str(30500 + os.getpid() % 1000)
    root_flag = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    proc = subprocess.run(["mpirun", *root_flag, "--oversubscribe", "-n", "2", "-x", "OMP_NUM_THREADS=1", "-x", f"MASTER_PORT={port}",
                           sys.executable, "-m", "fedbench", "backend=ddp", *args, f"hydra.run.dir={tmp_path / 'ddp'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert_matches_inprocess(args, tmp_path / "ddp", tmp_path / "inprocess")


def assert_ddp_and_resume_agree(args: list[str], rounds: int, split: int, tmp_path: Path):
    """``args`` run for ``rounds`` on 2 forked ddp ranks equals in-process (1e-5), and a run stopped after
    ``split`` rounds then continued ends bit-identical to an uninterrupted one; returns (whole, resumed)."""
    full = [*args, f"rounds={rounds}"]
    run(compose_config([*full, "backend=ddp", "backend.workers=2", "backend.threads=1"], tmp_path / "ddp"))
    assert_matches_inprocess(full, tmp_path / "ddp", tmp_path / "ref")
    whole = run(compose_config(full, tmp_path / "whole"))
    run(compose_config([*args, f"rounds={split}"], tmp_path / "split"))
    resumed = run(compose_config(full, tmp_path / "split"))
    assert torch.equal(whole.server["params"], resumed.server["params"])
    return whole, resumed
