"""FedADMM: dual updates, augmented models and the consensus variable, by hand over 2 rounds."""

from fedbench.algorithms.fedadmm import fedadmm
from tests.algo_toy import close, local, local_loss_grad, play, t


def test_two_rounds_by_hand():
    alg = fedadmm(num_clients=2, rho=0.5)
    server, states = alg.init(t(0.0, 0.0)), {}
    server = play(alg, server, states, [local(0, t(1.0, 0.0)), local(1, t(0.0, -2.0))])
    assert close(states[0]["dual"], t(0.5, 0.0)) and close(states[1]["dual"], t(0.0, -1.0))  # y + rho (theta - z)
    assert close(states[0]["augmented"], t(2.0, 0.0)) and close(states[1]["augmented"], t(0.0, -4.0))
    assert close(server["params"], t(1.0, -2.0))  # z = mean of augmented models
    server = play(alg, server, states, [local(1, t(1.0, -1.0))])
    assert close(states[1]["dual"], t(0.0, -0.5)) and close(states[1]["augmented"], t(1.0, -2.0))
    assert close(server["params"], t(1.5, -1.0))  # still the mean of u_0 = [2, 0] and u_1 = [1, -2]


def test_late_client_starts_from_initial_model():
    alg = fedadmm(num_clients=2, rho=1.0)
    server, states = alg.init(t(0.0, 0.0)), {}
    server = play(alg, server, states, [local(0, t(2.0, 2.0))])  # u_0 = [4, 4]; z = [2, 2]
    server = play(alg, server, states, [local(1, t(2.0, 2.0))])  # u_1 = [2, 2] (dual 0), du from the initial [0, 0]
    assert close(server["params"], t(3.0, 3.0))


def test_local_term_gradient():
    alg = fedadmm(num_clients=2, rho=0.5)
    # d/dw [<y, w> + rho/2 ||w - z||^2] = y + rho (w - z)
    grad = local_loss_grad(alg, t(2.0, 0.0), {"params": t(0.0, 0.0)}, {"dual": t(1.0, 1.0)})
    assert close(grad, t(2.0, 1.0))
