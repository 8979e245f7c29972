"""Buffers (BatchNorm running statistics) travel with the parameters: averaged by the server, or kept
on each client with task.local_buffers (FedBN), checked against a hand computation and across resume."""

import pytest
import torch

from fedbench.build import build
from fedbench.errors import ConfigError
from fedbench.run import run
from tests.conftest import compose_config

# one hidden layer of 4 units: Linear(64, 4) -> BatchNorm1d(4) -> ReLU -> Linear(4, 10); full local batch,
# one step per round, so each client's running statistics come from one forward pass at the server model
TOY = ["model=mlp_bn", "model.hidden=[4]", "num_clients=2", "client_fraction=1", "local_epochs=1", "batch_size=null",
       "rounds=1", "checkpoint_every=0"]


def _stats_after_one_step(exp, client):
    """BatchNorm's running mean/var after one training forward on ``client``'s data (momentum 0.1)."""
    x, _ = exp.client_data[client]
    linear = exp.task.model[1]
    with torch.no_grad():
        h = linear(x.flatten(1))
    return 0.1 * h.mean(0), 0.9 * torch.ones(4) + 0.1 * h.var(0, unbiased=True)


def test_running_statistics_are_sample_weighted_means_of_the_clients(make_cfg):
    cfg = make_cfg(*TOY, "partitioner=dirichlet", "partitioner.alpha=1.0")
    exp = build(cfg)
    (m0, v0), (m1, v1) = _stats_after_one_step(exp, 0), _stats_after_one_step(exp, 1)
    n0, n1 = len(exp.parts[0]), len(exp.parts[1])
    assert n0 != n1  # unequal clients: the weighting matters
    result = run(cfg)
    buffers = result.server["buffers"]  # [running_mean (4), running_var (4), num_batches_tracked (1)]
    assert torch.allclose(buffers[:4], (n0 * m0 + n1 * m1) / (n0 + n1), atol=1e-5)
    assert torch.allclose(buffers[4:8], (n0 * v0 + n1 * v1) / (n0 + n1), atol=1e-5)
    assert buffers[8] == 1
    p, b = result.summary["num_params"], buffers.numel()
    assert result.rows[0]["bytes_up"] == result.rows[0]["bytes_down"] == 2 * (p + b) * 4  # buffers travel both ways


def test_local_buffers_stay_on_each_client(make_cfg):
    cfg = make_cfg(*TOY, "partitioner=dirichlet", "partitioner.alpha=1.0", "task.local_buffers=true", "rounds=2")
    exp = build(cfg)
    (m0, v0), (m1, _) = _stats_after_one_step(exp, 0), _stats_after_one_step(exp, 1)
    result = run(cfg)
    # the server never learns them: its buffers stay the initial ones; nothing extra goes on the wire
    assert torch.equal(result.server["buffers"], torch.cat([torch.zeros(4), torch.ones(4), torch.zeros(1)]))
    assert result.rows[0]["bytes_up"] == 2 * result.summary["num_params"] * 4
    # round 1 statistics of client 0 by hand; round 2 started from them (momentum again), not from the server's
    first = run(make_cfg(*TOY, "partitioner=dirichlet", "partitioner.alpha=1.0", "task.local_buffers=true")).client_states
    assert torch.allclose(first[0]["buffers"][:4], m0, atol=1e-5) and torch.allclose(first[0]["buffers"][4:8], v0, atol=1e-5)
    assert torch.allclose(first[1]["buffers"][:4], m1, atol=1e-5)
    assert result.client_states[0]["buffers"][8] == 2  # two rounds of this client's own counter
    assert not torch.allclose(result.client_states[0]["buffers"][:4], result.client_states[1]["buffers"][:4])


def test_buffers_survive_checkpoint_and_resume(make_cfg, tmp_path):
    common = ["model=mlp_bn", "num_clients=6", "client_fraction=0.5", "local_epochs=1", "batch_size=16",
              "partitioner=iid"]
    for local in ("false", "true"):
        whole = run(compose_config([*common, f"task.local_buffers={local}", "rounds=4"], tmp_path / f"whole{local}"))
        run(compose_config([*common, f"task.local_buffers={local}", "rounds=2"], tmp_path / f"split{local}"))
        resumed = run(compose_config([*common, f"task.local_buffers={local}", "rounds=4"], tmp_path / f"split{local}"))
        assert torch.equal(whole.server["params"], resumed.server["params"])
        assert torch.equal(whole.server["buffers"], resumed.server["buffers"])
        assert whole.client_states.keys() == resumed.client_states.keys()
        for c, state in whole.client_states.items():
            assert all(torch.equal(state[k], resumed.client_states[c][k]) for k in state)
        assert [r["test_accuracy"] for r in whole.rows] == [r["test_accuracy"] for r in resumed.rows]


def test_batch_norm_refuses_a_last_batch_of_one_sample(make_cfg):
    with pytest.raises(ConfigError, match="batch_size must be a size that leaves no client a last batch of 1 sample"):
        run(make_cfg("model=mlp_bn", "num_clients=2", "batch_size=718"))  # 1438 = 2 x 719 = 718 + 1


def test_batch_norm_model_trains_federated(make_cfg):
    result = run(make_cfg("model=mlp_bn", "rounds=5", "batch_size=16"))
    assert result.summary["final_accuracy"] > 0.85


@pytest.mark.slow
def test_forked_ddp_ranks_carry_buffers_like_inprocess(tmp_path):
    from tests.test_ddp import assert_matches_inprocess

    args = ["model=mlp_bn", "batch_size=16", "rounds=2", "num_clients=6", "client_fraction=0.5", "local_epochs=1"]
    run(compose_config([*args, "backend=ddp", "backend.workers=2", "backend.threads=1"], tmp_path / "ddp"))
    assert_matches_inprocess(args, tmp_path / "ddp", tmp_path / "ref")
    ddp = torch.load(tmp_path / "ddp" / "checkpoint" / "checkpoint.pt", weights_only=True)["server"]["buffers"]
    ref = torch.load(tmp_path / "ref" / "checkpoint" / "checkpoint.pt", weights_only=True)["server"]["buffers"]
    assert torch.allclose(ddp, ref, atol=1e-5)
