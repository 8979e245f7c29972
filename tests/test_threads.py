"""Torch threads default to the CPUs a process may use (affinity, SLURM, cgroup quota) shared among its
local ranks, and the choice is recorded in summary.json."""

import os

import pytest
import torch

from fedbench import threads
from fedbench.run import run
from tests.conftest import compose_config


def test_cgroup_v2_and_v1_quotas_are_read_in_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpus(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpus(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpus(tmp_path) == 3.0
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpus(tmp_path) is None


def test_the_smallest_limit_wins_and_is_shared_among_local_ranks(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    monkeypatch.setattr(threads, "cgroup_cpus", lambda root=threads.CGROUP: 6.5)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "16")
    for key in ("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"):
        monkeypatch.delenv(key, raising=False)
    limits = threads.usable_cpus()
    assert limits["affinity"] == 8 and limits["slurm_cpus_per_task"] == 16 and limits["cgroup_quota"] == 6.5
    assert limits["cpus"] == 6  # the quota, rounded down
    assert threads.default_threads() == 6
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun's 4 local ranks share the 6 CPUs
    assert threads.default_threads() == 1
    assert threads.default_threads(2) == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert threads.default_threads(1) == 1


def test_a_run_uses_and_records_the_default(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: {"machine": 64, "cpus": 1})
    before = torch.get_num_threads()
    try:
        summary = run(compose_config(["rounds=1"], tmp_path / "run")).summary
        assert summary["hardware"]["torch_threads"] == 1
        assert summary["hardware"]["cpu_limits"]["cpus"] == 1
    finally:
        torch.set_num_threads(before)


def test_backend_threads_overrides_the_default(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: {"machine": 64, "cpus": 1})
    before = torch.get_num_threads()
    try:
        summary = run(compose_config(["rounds=1", "backend=ddp", "backend.threads=2"], tmp_path / "run")).summary
        assert summary["hardware"]["torch_threads"] == 2
    finally:
        torch.set_num_threads(before)


def test_an_explicit_omp_num_threads_wins_over_the_default(tmp_path):
    """``OMP_NUM_THREADS=1 uv run python -m fedbench`` runs and records 1 thread, and says where it came from."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "omp"
    subprocess.run([sys.executable, "-m", "fedbench", "rounds=1", "local_epochs=1", f"hydra.run.dir={out}"], env=env,
                   check=True, capture_output=True, cwd=tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hardware"]["torch_threads"] == 1
    assert summary["hardware"]["threads_source"] == "OMP_NUM_THREADS"


def test_a_user_set_num_threads_before_run_wins_and_backend_threads_wins_over_both(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: {"machine": 64, "cpus": 4})
    for key in threads.ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    before = torch.get_num_threads()
    monkeypatch.setitem(threads._state, "set_by_fedbench", before)  # whatever earlier tests set: not the user's
    try:
        auto = run(compose_config(["rounds=1"], tmp_path / "auto")).summary["hardware"]
        assert (auto["torch_threads"], auto["threads_source"]) == (4, "automatic")
        torch.set_num_threads(3)  # the user's own call, after importing fedbench
        user = run(compose_config(["rounds=1"], tmp_path / "user")).summary["hardware"]
        assert (user["torch_threads"], user["threads_source"]) == (3, "torch.set_num_threads")
        torch.set_num_threads(3)
        cfg = run(compose_config(["rounds=1", "backend.threads=2"], tmp_path / "cfg")).summary["hardware"]
        assert (cfg["torch_threads"], cfg["threads_source"]) == (2, "backend.threads")
    finally:
        torch.set_num_threads(before)
