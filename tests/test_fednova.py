"""FedNova: normalized averaging with unequal local steps, by hand."""

import pytest
import torch

from fedbench.algorithms.fednova import a_norm, fednova
from fedbench.run import run
from tests.algo_toy import close, local, play, t


def test_unequal_tau_by_hand():
    alg = fednova()
    server = alg.init(t(0.0, 0.0))
    # d_0 = (x - y_0)/2 = [1, 0]; d_1 = (x - y_1)/4 = [0, 2]; p = [1/4, 3/4]; tau_eff = 0.5 + 3 = 3.5
    server = play(alg, server, {}, [local(0, t(-2.0, 0.0), n=1, steps=2), local(1, t(0.0, -8.0), n=3, steps=4)])
    assert close(server["params"], t(-0.875, -5.25))  # -3.5 * [0.25, 1.5]; FedAvg would give [-0.5, -6]


def test_a_norm_with_momentum_matches_unrolled_sgd():
    # momentum 0.5, two steps: y = x - lr (g1 + (0.5 g1 + g2)) -> a = [1.5, 1], ||a||_1 = 2.5
    assert a_norm(2, 0.5) == pytest.approx(2.5)
    assert a_norm(7, 0.0) == 7.0


def test_equal_steps_reduce_to_fedavg(make_cfg):
    a = run(make_cfg("algorithm=fednova", "rounds=3"))  # iid digits: every client takes 40 steps
    b = run(make_cfg("algorithm=fedavg", "rounds=3"))
    assert torch.allclose(a.server["params"], b.server["params"], atol=1e-6, rtol=0)


def test_heterogeneous_epochs_change_the_result(make_cfg):
    a = run(make_cfg("algorithm=fednova", "rounds=2", "local_epochs=1", "local_epochs_max=4"))
    b = run(make_cfg("algorithm=fedavg", "rounds=2", "local_epochs=1", "local_epochs_max=4"))
    assert not torch.allclose(a.server["params"], b.server["params"], atol=1e-4)
    assert a.rows[-1]["bytes_up"] == a.rows[-1]["clients"] * (a.summary["num_params"] + 1) * 4  # d_i + ||a_i||_1
