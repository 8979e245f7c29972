"""backend=vectorized: clients trained at once with torch.func equal the sequential in-process loop
(per-round accuracy and final parameters to 1e-5), and what cannot be vectorised is refused by name."""

from pathlib import Path

import pytest
import torch

from fedbench.errors import ConfigError
from fedbench.run import run
from tests.conftest import compose_config

UNEQUAL = ["num_clients=12", "client_fraction=0.5", "partitioner=quantity", "rounds=3", "local_epochs=2"]
USER = ["hydra.searchpath=[file://" + str(Path(__file__).parent / "conf") + "]"]


def assert_same(args: list[str], tmp_path: Path, *vectorized: str) -> None:
    ref = run(compose_config(args, tmp_path / "inprocess"))
    vec = run(compose_config([*args, "backend=vectorized", *vectorized], tmp_path / "vectorized"))
    assert [r["test_accuracy"] for r in vec.rows] == pytest.approx([r["test_accuracy"] for r in ref.rows], abs=1e-5)
    assert [r["train_loss"] for r in vec.rows] == pytest.approx([r["train_loss"] for r in ref.rows], abs=1e-5)
    assert torch.allclose(vec.server["params"], ref.server["params"], atol=1e-5, rtol=0)
    assert [r["steps"] for r in vec.rows] == [r["steps"] for r in ref.rows]


@pytest.mark.parametrize("algorithm", ["fedavg", "fedprox", "scaffold"])
def test_vectorized_equals_inprocess_on_clients_of_unequal_sizes(tmp_path, algorithm):
    assert_same([f"algorithm={algorithm}", *UNEQUAL, "momentum=0.5", "weight_decay=0.001"], tmp_path)


def test_chunks_of_two_equal_one_chunk_and_full_batches_work(tmp_path):
    # B = infinity (one full-batch step per epoch, every client a different batch size) in chunks of 2
    assert_same(["algorithm=fedprox", *UNEQUAL, "batch_size=null", "momentum=0.9"], tmp_path, "backend.chunk=2")


@pytest.mark.parametrize("args", [
    ["topology=gossip", "num_clients=8", "client_fraction=1", "partitioner=quantity"],
    ["topology=hierarchical", "algorithm=scaffold", "num_clients=10", "client_fraction=0.5", "partitioner=quantity"],
], ids=["gossip", "hierarchical_scaffold"])
def test_clients_starting_from_different_models(tmp_path, args):
    # gossip nodes and edge servers' clients start from different models: the start state is stacked per client
    assert_same([*args, "rounds=3", "local_epochs=1"], tmp_path)


@pytest.mark.parametrize("overrides, reason", [
    (["model=mlp_bn", "batch_size=16"], "has buffers (e.g. BatchNorm statistics"),
    (["algorithm=fedsgd"], "algorithm fedsgd takes one gradient per client"),
    (["privacy=local_dp"], "local DP-SGD (privacy=local_dp)"),
    (["task.optimizer._target_=torch.optim.Adam", "~task.optimizer.momentum"],
     "optimizer must be torch.optim.SGD with one param group (got Adam"),
    ([*USER, "task=user"], "a learning-rate scheduler with interval=epoch"),
    ([*USER, "task=user_branching"], "training_step cannot run under torch.func.vmap"),
    (["backend.chunk=0"], "backend.chunk must be auto or an integer >= 1"),
])
def test_what_cannot_be_vectorised_is_refused_with_the_reason(tmp_path, overrides, reason):
    cfg = compose_config(["backend=vectorized", "rounds=1", *overrides], tmp_path / "run")
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert reason in str(err.value)
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_auto_chunks_are_equal_and_capped_on_the_cpu(tmp_path):
    from fedbench.backends.vectorized import CPU_CHUNK_PARAMS, FAST_CPU_CHUNK_PARAMS, _fits, equal_chunks
    from fedbench.build import build

    assert [equal_chunks(60, 50), equal_chunks(100, 50), equal_chunks(101, 50), equal_chunks(7, 100)] == [30, 50, 34, 7]
    assert equal_chunks(5, 0) == 1
    exp = build(compose_config(["backend=vectorized", "model=mlp", "model.hidden=[4096]", "algorithm=fedprox"],
                               tmp_path / "run"))
    p = sum(v.numel() for v in exp.task.parameters())
    assert _fits(exp, 1.0, torch.device("cpu")) == CPU_CHUNK_PARAMS // p  # 32 models of 307k parameters, not what memory holds
    # FedAvg on a Linear-ReLU network takes the hand-derived pass, fastest in small chunks: 6 models of 307k
    exp = build(compose_config(["backend=vectorized", "model=mlp", "model.hidden=[4096]"], tmp_path / "run2"))
    assert _fits(exp, 1.0, torch.device("cpu")) == FAST_CPU_CHUNK_PARAMS // p == 6
