"""FedAdagrad: the second moment accumulates squared pseudo-gradients, by hand over 2 rounds."""

from fedbench.algorithms.fedavg import fedavg
from fedbench.server_optimizers import adagrad
from tests.algo_toy import close, local, play, t


def test_two_rounds_by_hand():
    alg = fedavg(upload="pseudo_gradient", server_optimizer=adagrad(lr=1.0, beta1=0.0, tau=1.0, initial_accumulator=0.0))
    server = play(alg, alg.init(t(0.0, 0.0)), {}, [local(0, t(3.0, 0.0))])
    assert close(server["v"], t(9.0, 0.0)) and close(server["params"], t(0.75, 0.0))  # 3 / (3 + 1)
    server = play(alg, server, {}, [local(0, t(0.75 + 4.0, 1.0))])  # delta = [4, 1]
    assert close(server["v"], t(25.0, 1.0))
    assert close(server["params"], t(0.75 + 4.0 / 6.0, 0.5))  # 4/(5+1), 1/(1+1)
