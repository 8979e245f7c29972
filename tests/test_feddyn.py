"""FedDyn: client gradient states, the server's h, and the local term, by hand over 2 rounds."""

from fedbench.algorithms.feddyn import feddyn
from tests.algo_toy import close, local, local_loss_grad, play, t


def test_two_rounds_by_hand():
    alg = feddyn(num_clients=2, alpha=0.5)
    server, states = alg.init(t(0.0, 0.0)), {}
    server = play(alg, server, states, [local(0, t(1.0, 0.0)), local(1, t(0.0, 2.0))])
    assert close(states[0]["grad"], t(-0.5, 0.0)) and close(states[1]["grad"], t(0.0, -1.0))  # g - alpha (w - x)
    assert close(server["h"], t(-0.25, -0.5))  # -alpha/N * sum (w_k - x)
    assert close(server["params"], t(1.0, 2.0))  # mean(w) - h / alpha = [0.5, 1] + [0.5, 1]
    server = play(alg, server, states, [local(0, t(2.0, 2.0))])
    assert close(states[0]["grad"], t(-1.0, 0.0)) and close(server["h"], t(-0.5, -0.5))
    assert close(server["params"], t(3.0, 3.0))


def test_local_term_gradient():
    alg = feddyn(num_clients=2, alpha=0.5)
    server = {"params": t(1.0, 1.0), "h": t(0.0, 0.0)}
    # d/dw [-<g, w> + alpha/2 ||w - x||^2] = -g + alpha (w - x)
    assert close(local_loss_grad(alg, t(3.0, 0.0), server, {"grad": t(1.0, -2.0)}), t(0.0, 1.5))
