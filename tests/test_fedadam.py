"""FedAdam: one server step by hand, and its reduction to FedAvg with a server learning rate."""

import math

import torch

from fedbench.algorithms.fedavg import fedavg
from fedbench.server_optimizers import adam
from fedbench.run import run
from tests.algo_toy import close, local, play, t


def test_one_step_by_hand():
    alg = fedavg(upload="pseudo_gradient", server_optimizer=adam(lr=0.01, beta1=0.9, beta2=0.99, tau=1e-3))
    server = play(alg, alg.init(t(0.0, 0.0)), {}, [local(0, t(0.2, -0.4))])
    expected = []
    for d in (0.2, -0.4):
        m, v = 0.1 * d, 0.99 * 1e-6 + 0.01 * d * d  # v starts at tau^2
        expected.append(0.01 * m / (math.sqrt(v) + 1e-3))
    assert close(server["params"], torch.tensor(expected))
    assert close(server["m"], t(0.02, -0.04))


def test_degenerate_fedadam_is_fedavg_with_server_lr(make_cfg):
    """beta1 = 0, beta2 = 1, tau = 1, v0 = 0: x + server_lr * delta / (0 + 1)."""
    adam = run(make_cfg("algorithm=fedadam", "server_optimizer.beta1=0", "server_optimizer.beta2=1", "server_optimizer.tau=1",
                        "server_optimizer.initial_accumulator=0", "server_optimizer.lr=0.7", "rounds=3"))
    avg = run(make_cfg("algorithm=fedavg", "algorithm.upload=pseudo_gradient", "server_optimizer.lr=0.7", "rounds=3"))
    assert torch.allclose(adam.server["params"], avg.server["params"], atol=1e-6, rtol=0)
