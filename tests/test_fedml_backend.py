"""backend=fedml: FedML 0.9.6's own simulators on fedbench's split, initial model and sampled clients.

The refusals and the handoff need no FedML; the runs build FedML's isolated environment on first use and
are skipped, with the reason, where it cannot be built (no package index, no Python 3.11)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fedbench.backends.fedml import environment, handoff
from fedbench.build import build_task
from fedbench.parts import build_part
from fedbench.errors import ConfigError
from fedbench.params import get_flat
from fedbench.run import run
from fedbench.sampling import sample_clients
from tests.conftest import compose_config

SHARED = ["num_clients=10", "client_fraction=1", "local_epochs=2", "rounds=8", "lr=0.05"]


@pytest.fixture(scope="module")
def fedml_env() -> Path:
    try:
        env, _ = environment.ensure()
    except environment.FedMLEnvironmentError as err:
        pytest.skip(f"FedML's environment cannot be built here: {err}")
    return env


@pytest.mark.parametrize("overrides, field", [
    (["algorithm=scaffold"], "algorithm: backend=fedml runs ['fedavg', 'fedprox'] through FedML 0.9.6; scaffold"),
    (["algorithm=fedadam"], "server_optimizer: backend=fedml averages"),
    (["topology=gossip"], "topology: backend=fedml runs FedML's star simulator, which has no topology gossip"),
    (["compressor=qsgd"], "compressor: backend=fedml"),
    (["momentum=0.9"], "momentum must be 0 with backend=fedml"),
    (["backend.mode=nccl"], "backend.mode=nccl (FedML's multi-GPU simulator) is not wired"),
    (["backend.mode=gloo"], "backend.mode must be one of ['sp', 'mpi', 'nccl']"),
    (["backend.mode=mpi", "backend.workers=3", "num_clients=4", "client_fraction=0.5"],
     "backend.workers must be null or the clients per round m = floor(client_fraction * num_clients) = 2"),
    (["stop_at_target=true"], "stop_at_target must be false with backend=fedml"),
])
def test_what_fedml_cannot_run_is_refused_by_name_before_any_work(tmp_path, overrides, field):
    env_dir = tmp_path / "env"
    cfg = compose_config(["backend=fedml", f"backend.env_dir={env_dir}", *overrides], tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert field in str(err.value)
    assert not env_dir.exists()  # no environment built
    assert not (tmp_path / "run" / "fedml").exists() and not (tmp_path / "run" / "metrics.csv").exists()


def test_the_handoff_carries_fedbench_s_split_initial_model_and_sampled_clients(tmp_path):
    cfg = compose_config(["backend=fedml", "num_clients=6", "client_fraction=0.5", "partitioner=dirichlet",
                          "rounds=4"], tmp_path / "run")
    inprocess = compose_config(["num_clients=6", "client_fraction=0.5", "partitioner=dirichlet", "rounds=4"],
                               tmp_path / "ref")
    data = build_part(cfg.dataset)
    parts = build_part(cfg.partitioner)(data.train_labels, cfg.num_clients, cfg.seed, data.groups)
    task = build_task(cfg, data)
    handoff.write(tmp_path / "h", cfg, data, parts, task.model, threads=1)

    model = torch.load(tmp_path / "h" / handoff.MODEL, weights_only=False)
    reference = build_task(inprocess, build_part(inprocess.dataset))
    assert torch.equal(get_flat(model), get_flat(reference))  # the same initial parameters
    x = data.x_test[:7]
    assert torch.equal(model(x), reference.model(x))  # the traced model computes what fedbench's does

    saved = np.load(tmp_path / "h" / handoff.DATA)
    bounds = [*saved["offsets"], len(saved["index"])]
    for c, part in enumerate(parts):
        assert np.array_equal(saved["index"][bounds[c]:bounds[c + 1]], part)
    plan = json.loads((tmp_path / "h" / handoff.PLAN).read_text())
    assert plan["sampled"] == [sample_clients(6, 0.5, 0, r) for r in (1, 2, 3, 4)]
    config = (tmp_path / "h" / handoff.CONFIG).read_text()
    assert "federated_optimizer: FedAvg" in config and "client_num_per_round: 3" in config


@pytest.mark.slow
def test_fedavg_through_fedml_sp_tracks_the_inprocess_run(tmp_path, fedml_env):
    ours = run(compose_config(SHARED, tmp_path / "inprocess"))
    theirs = run(compose_config([*SHARED, "backend=fedml"], tmp_path / "fedml"))
    a = [r["test_accuracy"] for r in ours.rows]
    b = [r["test_accuracy"] for r in theirs.rows]
    assert len(b) == 8 and theirs.summary["fedml"]["mode"] == "sp"
    # Only the batch order differs (FedML's DataLoader shuffle): the first two rounds differ by up to
    # ~0.11 on digits, later rounds by a few points.
    assert max(abs(x - y) for x, y in zip(a[2:], b[2:])) <= 0.05, (a, b)
    assert abs(a[-1] - b[-1]) <= 0.03 and b[-1] >= 0.8, (a, b)
    # FedML does not expose what its simulators transfer: its bytes are a formula, labelled nominal
    assert theirs.summary["bytes_source"] == "nominal" and ours.summary["bytes_source"] == "measured"
    # the same folder again: a finished run is skipped (resume-by-skip, as with every backend)
    again = run(compose_config([*SHARED, "backend=fedml"], tmp_path / "fedml"))
    assert [r["test_accuracy"] for r in again.rows] == b
    # one report compares the backends: a Backends section with the gap to the in-process curve
    from fedbench.report.__main__ import main as report

    report([str(tmp_path / "inprocess"), str(tmp_path / "fedml"), "--out", str(tmp_path / "report")])
    text = (tmp_path / "report" / "systems_report.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| backend=fedml | fedml | 1 |"))
    gap = float(row.rstrip(" |").rsplit("|", 1)[-1])
    assert gap == pytest.approx(max(abs(x - y) for x, y in zip(a, b)), abs=1e-4)
    comm = next(line for line in text.splitlines() if line.startswith("| backend=fedml |") and "nominal" in line)
    assert "| measured |" in text and comm


@pytest.mark.slow
def test_fedml_mpi_runs_a_server_and_two_client_processes(tmp_path, fedml_env):
    if not environment.mpirun(fedml_env).exists():
        pytest.skip("Open MPI's mpirun is not in FedML's environment")
    args = ["num_clients=4", "client_fraction=0.5", "rounds=3", "local_epochs=2", "lr=0.05"]
    ours = run(compose_config(args, tmp_path / "inprocess"))
    theirs = run(compose_config([*args, "backend=fedml", "backend.mode=mpi", "backend.workers=2"], tmp_path / "mpi"))
    assert theirs.summary["fedml"]["processes"] == 3
    log = (tmp_path / "mpi" / "fedml" / "fedml.log").read_text()
    assert "FedML-Server" in log and "Client Index = 0" in log and "Client Index = 1" in log
    a = [r["test_accuracy"] for r in ours.rows]
    b = [r["test_accuracy"] for r in theirs.rows]
    assert all(math.isfinite(v) for v in b) and abs(a[-1] - b[-1]) <= 0.03, (a, b)


def test_an_environment_that_cannot_be_built_is_a_clear_error_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("UV", "/bin/false")  # a uv that fails, as one without a package index would
    cfg = compose_config(["backend=fedml", f"backend.env_dir={tmp_path / 'env'}", "rounds=2"], tmp_path / "run")
    with pytest.raises(environment.FedMLEnvironmentError, match="needs the package index"):
        run(cfg)
    assert not (tmp_path / "run" / "metrics.csv").exists() and not (tmp_path / "run" / "status.json").exists()
