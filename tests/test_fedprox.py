"""FedProx: the proximal term by hand, mu = 0 equals FedAvg, and the straggler protocol."""

import pytest
import torch

from fedbench.algorithms.fedprox import fedprox
from fedbench.errors import ConfigError
from fedbench.run import run
from tests.algo_toy import close, local_loss_grad, t


def test_proximal_term_value_and_gradient():
    alg = fedprox(mu=0.5)
    server = alg.init(t(0.0, 1.0))
    assert float(alg.local_loss(t(1.0, 3.0), server, {})) == pytest.approx(0.25 * (1 + 4))  # mu/2 ||w - x||^2
    assert close(local_loss_grad(alg, t(1.0, 3.0), server, {}), t(0.5, 1.0))  # mu (w - x)


def test_mu_zero_equals_fedavg_exactly(make_cfg):
    a = run(make_cfg("algorithm=fedprox", "algorithm.mu=0", "rounds=3"))
    b = run(make_cfg("algorithm=fedavg", "rounds=3"))
    assert torch.equal(a.server["params"], b.server["params"])
    assert [r["test_accuracy"] for r in a.rows] == [r["test_accuracy"] for r in b.rows]


def test_mu_pulls_local_models_toward_global(make_cfg):
    free = run(make_cfg("algorithm=fedprox", "algorithm.mu=0", "rounds=1", "num_clients=2", "client_fraction=1"))
    tied = run(make_cfg("algorithm=fedprox", "algorithm.mu=10", "rounds=1", "num_clients=2", "client_fraction=1"))
    start = run(make_cfg("algorithm=fedavg", "rounds=1", "lr=1e-9", "num_clients=2", "client_fraction=1"))
    moved = lambda r: float((r.server["params"] - start.server["params"]).norm())  # noqa: E731
    assert moved(tied) < 0.7 * moved(free)


def test_stragglers_dropped_by_fedavg_kept_by_fedprox(make_cfg):
    common = ["num_clients=10", "client_fraction=0.4", "straggler_fraction=0.5", "rounds=2"]
    avg = run(make_cfg("algorithm=fedavg", *common))
    prox = run(make_cfg("algorithm=fedprox", *common))
    assert [r["messages_down"] for r in avg.rows] == [4, 4] == [r["messages_down"] for r in prox.rows]
    assert [r["messages_up"] for r in avg.rows] == [2, 2]  # 2 of 4 straggle and are dropped
    assert [r["messages_up"] for r in prox.rows] == [4, 4]  # partial work still arrives


def test_negative_mu_is_rejected():
    with pytest.raises(ConfigError, match="algorithm.mu must be >= 0"):
        fedprox(mu=-1)
