"""FedAvgM: server momentum by hand; momentum 0 is FedAvg."""

import torch

from fedbench.algorithms.fedavg import fedavg
from fedbench.server_optimizers import momentum
from fedbench.run import run
from tests.algo_toy import close, local, play, t


def test_two_rounds_by_hand():
    alg = fedavg(upload="pseudo_gradient", server_optimizer=momentum(lr=1.0, momentum=0.5))
    server = play(alg, alg.init(t(1.0, 1.0)), {}, [local(0, t(0.8, 1.0))])  # delta = x - y = [0.2, 0]
    assert close(server["velocity"], t(0.2, 0.0)) and close(server["params"], t(0.8, 1.0))
    server = play(alg, server, {}, [local(0, t(0.8, 0.6))])  # delta = [0, 0.4]; v = [0.1, 0.4]
    assert close(server["params"], t(0.7, 0.6))


def test_zero_momentum_is_fedavg(make_cfg):
    a = run(make_cfg("algorithm=fedavgm", "server_optimizer.momentum=0", "rounds=3"))
    b = run(make_cfg("algorithm=fedavg", "rounds=3"))
    assert torch.allclose(a.server["params"], b.server["params"], atol=1e-6, rtol=0)
