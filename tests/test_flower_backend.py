"""backend=flower: Flower 1.42's simulation engine (run_simulation, Ray) with Flower's own strategies on fedbench's
split, initial model, sampled clients and batch orders.

The refusals and the handoff need no Flower; the runs build Flower's isolated environment on first use (one
environment for the module) and are skipped, with the reason, where it cannot be built. Each run starts Ray with at
most 2 CPUs (``backend.cpus=2``)."""

import io
import json

import numpy as np
import pytest
import torch

from fedbench.backends import handoff
from fedbench.backends.flower import environment
from fedbench.backends.flower.runner import _plan
from fedbench.backends.flower.translate import strategy
from fedbench.build import build_task
from fedbench.errors import ConfigError
from fedbench.parts import build_part
from fedbench.run import run
from fedbench.sampling import sample_clients
from fedbench.seeding import derive_seed
from tests.conftest import compose_config

# digits, 10 clients, 5 sampled per round, so fedbench's sampling matters
SHARED = ["num_clients=10", "client_fraction=0.5", "local_epochs=1", "lr=0.05", "seed=3"]
RAY = ["backend.cpus=2"]
# the conventions that make fedbench's server step Flower's (translate.py's table)
ADAM = ["algorithm=fedadam", "server_optimizer.bias_correction=flower", "server_optimizer.initial_accumulator=0"]
YOGI = ["algorithm=fedyogi", "server_optimizer.initial_accumulator=0"]
ADAGRAD = ["algorithm=fedadagrad", "server_optimizer.initial_accumulator=0", "server_optimizer.beta1=0"]


@pytest.fixture(scope="module")
def flower_env():
    try:
        env, _ = environment.ensure()
    except environment.FlowerEnvironmentError as err:
        pytest.skip(f"Flower's environment cannot be built here: {err}")
    return env


@pytest.mark.parametrize("overrides, message", [
    (["topology=gossip"], "topology: backend=flower cannot run topology gossip"),
    (["topology=async"], "topology: backend=flower cannot run topology"),
    (["compressor=topk"], "compressor: backend=flower cannot run compressor topk"),
    (["algorithm=scaffold"], "algorithm: backend=flower runs Flower's strategies"),
    (["algorithm=feddyn"], "fedbench's feddyn has no Flower strategy"),
    (["attack=sign_flip"], "attack: backend=flower cannot run attack"),
    (["privacy=dp_fedavg"], "privacy: backend=flower cannot run privacy"),
    (["aggregator=geometric_median"], "geometric_median has no Flower strategy"),
    (["algorithm=fedprox", "server_optimizer=adam"], "server_optimizer must be sgd with lr 1 with algorithm=fedprox"),
    (["algorithm=fedadam"], "Add server_optimizer.bias_correction=flower server_optimizer.initial_accumulator=0.0"),
    (["algorithm=fedadagrad", "server_optimizer.initial_accumulator=0"], "Add server_optimizer.beta1=0.0"),
    (["aggregator=multi_krum"], "aggregator.weighted must be true with backend=flower"),
    (["aggregator=krum", "aggregator.f=2"], "aggregator.f must be <= 1: Krum needs n > 2f + 2"),
    (["eval.per_client=true"], "eval.per_client must be auto or false with backend=flower"),
    (["straggler_fraction=0.2"], "straggler_fraction must be 0 with backend=flower"),
    (["stop_at_target=true"], "stop_at_target must be false with backend=flower"),
    (["paradigm=centralized"], "paradigm must be federated with backend=flower"),
])
def test_what_flower_cannot_run_is_refused_by_name_before_anything_is_built_or_written(tmp_path, overrides, message):
    env_dir = tmp_path / "env"
    cfg = compose_config(["backend=flower", f"backend.env_dir={env_dir}", *SHARED, *overrides], tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert message in str(err.value)
    assert not env_dir.exists()  # no environment built
    assert not (tmp_path / "run").exists()  # no run folder, not even its lock


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_client_gpus_without_a_gpu_is_refused_instead_of_waiting_for_ray_forever(tmp_path):
    cfg = compose_config(["backend=flower", "backend.client_gpus=0.5", *SHARED], tmp_path / "run")
    with pytest.raises(ConfigError, match="backend.client_gpus: 0.5 GPUs per client asked, and torch sees no GPU"):
        run(cfg)
    assert not (tmp_path / "run").exists()


def test_an_environment_that_cannot_be_built_is_a_clear_error_before_the_run_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("UV", "/bin/false")  # a uv that fails, as one without a package index would
    cfg = compose_config(["backend=flower", f"backend.env_dir={tmp_path / 'env'}", "rounds=2"], tmp_path / "run")
    with pytest.raises(environment.FlowerEnvironmentError, match="so it cannot run here. It needs the package index"):
        run(cfg)
    assert not (tmp_path / "run" / "metrics.csv").exists() and not (tmp_path / "run" / "status.json").exists()
    assert not (tmp_path / "run" / "flower").exists()


@pytest.mark.parametrize("overrides, name, options", [
    ([], "FedAvg", {}),
    (["algorithm=fedavgm"], "FedAvgM", {"server_learning_rate": 1.0, "server_momentum": 0.9}),
    (["server_optimizer.lr=0.5"], "FedAvgM", {"server_learning_rate": 0.5, "server_momentum": 0.0}),
    (["algorithm=fedprox", "algorithm.mu=0.1"], "FedProx", {"proximal_mu": 0.1}),
    (ADAM, "FedAdam", {"eta": 0.01, "eta_l": 0.05, "tau": 0.001, "beta_1": 0.9, "beta_2": 0.99}),
    (YOGI, "FedYogi", {"eta": 0.01, "eta_l": 0.05, "tau": 0.001, "beta_1": 0.9, "beta_2": 0.99}),
    (ADAGRAD, "FedAdagrad", {"eta": 0.1, "eta_l": 0.05, "tau": 0.001}),
    (["algorithm=qfedavg", "algorithm.q=0.5"], "QFedAvg",
     {"client_learning_rate": 0.05, "q": 0.5, "train_loss_key": "start-loss"}),
    (["aggregator=krum"], "Krum", {"num_malicious_nodes": 1}),
    (["aggregator=multi_krum", "aggregator.weighted=true"], "MultiKrum",
     {"num_malicious_nodes": 1, "num_nodes_to_select": 3}),
    (["aggregator=median"], "FedMedian", {}),
    (["aggregator=trimmed_mean"], "FedTrimmedAvg", {"beta": 0.2}),
])
def test_each_config_maps_to_one_of_flower_s_strategies(tmp_path, overrides, name, options):
    cfg = compose_config(["backend=flower", *SHARED, *overrides], tmp_path / "run")
    assert strategy(cfg) == {"name": name, "options": options}


def test_the_handoff_carries_the_split_initial_model_sampled_clients_and_batch_seeds(tmp_path):
    cfg = compose_config(["backend=flower", *SHARED, "rounds=3", "partitioner=dirichlet"], tmp_path / "run")
    data = build_part(cfg.dataset)
    parts = build_part(cfg.partitioner)(data.train_labels, cfg.num_clients, cfg.seed, data.groups)
    task = build_task(cfg, data)
    plan = _plan(cfg, strategy(cfg))
    handoff.write(tmp_path / "h", cfg, data, parts, task.model, 1, "backend=flower", plan)
    saved = json.loads((tmp_path / "h" / handoff.PLAN).read_text())
    assert saved["sampled"] == [sample_clients(10, 0.5, 3, r) for r in (1, 2, 3)]
    for r, clients in enumerate(saved["sampled"], start=1):
        for c in clients:  # the seeds of fedbench's own per-(round, client) generators
            assert saved["batch_seeds"][str(r)][str(c)] == derive_seed(3, r, c, "batches")
            assert saved["local_seeds"][str(r)][str(c)] == derive_seed(3, r, c, "local")
    assert saved["flower"]["strategy"] == {"name": "FedAvg", "options": {}} and saved["flower"]["cpus"] >= 1
    model = torch.load(tmp_path / "h" / handoff.MODEL, weights_only=False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), task.model.state_dict().values()))


def test_client_resources_pass_through_to_ray(tmp_path):
    cfg = compose_config(["backend=flower", *SHARED, "backend.cpus=6", "backend.client_cpus=1.5", "backend.threads=2"],
                         tmp_path / "run")
    flower = _plan(cfg, strategy(cfg))["flower"]
    assert (flower["cpus"], flower["client_cpus"], flower["client_gpus"], flower["threads"]) == (6, 1.5, 0.0, 2)
    assert flower["actors"] == 4 and flower["gpus"] is None  # 6 CPUs / 1.5 per client, as Flower sizes its pool


def _array_bytes(model: torch.nn.Module) -> int:
    """What Flower's ArrayRecord of this model's state dict carries: each tensor saved with np.save."""
    total = 0
    for tensor in model.state_dict().values():
        buffer = io.BytesIO()
        np.save(buffer, tensor.numpy(), allow_pickle=False)
        total += len(buffer.getvalue())
    return total


@pytest.mark.slow
def test_fedavg_through_flower_equals_the_inprocess_run_round_by_round(tmp_path, flower_env):
    args = [*SHARED, "rounds=5"]
    ours = run(compose_config(args, tmp_path / "inprocess"))
    theirs = run(compose_config([*args, "backend=flower", *RAY], tmp_path / "flower"))
    a = [r["test_accuracy"] for r in ours.rows]
    b = [r["test_accuracy"] for r in theirs.rows]
    assert len(b) == 5 and max(abs(x - y) for x, y in zip(a, b)) <= 1e-5, (a, b)
    assert max(abs(x["train_loss"] - y["train_loss"]) for x, y in zip(ours.rows, theirs.rows)) <= 1e-4
    s = theirs.summary
    assert s["backend"] == "flower" and s["flower"]["strategy"] == "FedAvg" and s["flower"]["version"] == "1.42.0"
    assert s["flower"]["startup_s"] > 0 and s["peak_memory_mb"] > 0
    # bytes counted from the ArrayRecords that crossed Flower's Grid: 5 messages each way per round, each the
    # model's arrays as np.save writes them (the values plus a .npy header each), not fedbench's 4 bytes x P
    cfg = compose_config(args, tmp_path / "unused")
    per_message = _array_bytes(build_task(cfg, build_part(cfg.dataset)).model)
    assert s["bytes_source"] == "measured"
    for row in theirs.rows:
        assert row["messages_up"] == row["messages_down"] == 5
        assert row["bytes_up"] == row["bytes_down"] == 5 * per_message
    assert per_message > 4 * s["num_params"]  # the headers: counted, not computed from P
    # the same folder again: a finished run is skipped (resume-by-skip, as with every backend)
    again = run(compose_config([*args, "backend=flower", *RAY], tmp_path / "flower"))
    assert [r["test_accuracy"] for r in again.rows] == b


@pytest.mark.slow
@pytest.mark.parametrize("overrides, name", [(ADAM, "FedAdam"), (["aggregator=krum"], "Krum"),
                                             (["algorithm=qfedavg", "algorithm.q=1"], "QFedAvg")],
                         ids=["FedAdam", "Krum", "QFedAvg"])
def test_flower_s_strategies_equal_fedbench_s_with_the_matching_conventions(tmp_path, flower_env, overrides, name):
    args = [*SHARED, "rounds=4", *overrides]
    ours = run(compose_config(args, tmp_path / "inprocess"))
    resources = ["backend.client_cpus=2"] if name == "QFedAvg" else []  # Ray fits one such actor in 2 CPUs
    theirs = run(compose_config([*args, "backend=flower", *RAY, *resources], tmp_path / "flower"))
    actors = {json.loads(line)["pid"] for line in (tmp_path / "flower" / "flower" / "actors.jsonl").open()}
    assert len(actors) == theirs.summary["flower"]["startup"]["actors_used"]
    assert len(actors) == 1 if resources else len(actors) <= 2  # Ray got 2 CPUs: 2 actors of 1 CPU, 1 of 2 CPUs
    a = [r["test_accuracy"] for r in ours.rows]
    b = [r["test_accuracy"] for r in theirs.rows]
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-5, (a, b)
    assert theirs.summary["flower"]["strategy"] == name
    assert a[-1] > a[0]  # it learns: the equality is not that of two stuck runs
