"""FedYogi: the sign rule of the second moment, by hand."""

from fedbench.algorithms.fedavg import fedavg
from fedbench.server_optimizers import second_moment, yogi
from tests.algo_toy import close, local, play, t


def test_sign_rule():
    v, delta = t(1.0, 0.01), t(0.5, 0.5)  # delta^2 = 0.25: above v in coordinate 1, below in 0
    # v - (1 - beta2) d^2 sign(v - d^2) = [1 - 0.0025, 0.01 + 0.0025]
    assert close(second_moment("yogi", v, delta, 0.99), t(0.9975, 0.0125))
    # Adam instead decays v multiplicatively: 0.99 v + 0.0025
    assert close(second_moment("adam", v, delta, 0.99), t(0.9925, 0.0124))


def test_server_state_after_a_round():
    alg = fedavg(upload="pseudo_gradient", server_optimizer=yogi(lr=0.1, beta1=0.0, beta2=0.9, tau=0.5))
    server = play(alg, alg.init(t(0.0, 0.0)), {}, [local(0, t(1.0, -1.0))])
    # v0 = 0.25; d^2 = 1 > v0 so v = 0.25 + 0.1 = 0.35; x = 0.1 * d / (sqrt(0.35) + 0.5)
    assert close(server["v"], t(0.35, 0.35))
    step = 0.1 / (0.35**0.5 + 0.5)
    assert close(server["params"], t(step, -step))
