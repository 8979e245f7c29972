"""Server optimizers compose with every pseudo-gradient algorithm: SCAFFOLD + server Adam and
FedProx + server momentum by hand on 2 clients, presets as plain FedAvg + an optimizer, and refusals."""

import math

import pytest
import torch

from fedbench.algorithms.fedprox import fedprox
from fedbench.algorithms.scaffold import scaffold
from fedbench.errors import ConfigError
from fedbench.run import run
from fedbench.server_optimizers import adam, momentum, sgd
from tests.algo_toy import close, local, play, t


def test_scaffold_with_server_adam_two_clients_by_hand():
    alg = scaffold(num_clients=2, option="II", server_optimizer=adam(lr=0.1, beta1=0.5, beta2=0.9, tau=0.1))
    server, states = alg.init(t(0.0, 0.0)), {}
    # client 0: y = [1, 0], K=2, lr=0.5; client 1: y = [0, 2], K=4, lr=0.5 (as in test_scaffold)
    server = play(alg, server, states, [local(0, t(1.0, 0.0), steps=2, lr=0.5), local(1, t(0.0, 2.0), steps=4, lr=0.5)])
    # Delta = unweighted mean(y_i - x) = [0.5, 1]; m = 0.5 Delta = [0.25, 0.5]
    # v = 0.9 * tau^2 + 0.1 Delta^2 = [0.009 + 0.025, 0.009 + 0.1] = [0.034, 0.109]
    assert close(server["m"], t(0.25, 0.5)) and close(server["v"], t(0.034, 0.109))
    expected = [0.1 * 0.25 / (math.sqrt(0.034) + 0.1), 0.1 * 0.5 / (math.sqrt(0.109) + 0.1)]
    assert close(server["params"], torch.tensor(expected))
    # the control variates are SCAFFOLD's, untouched by the server optimizer
    assert close(states[0]["c"], t(-1.0, 0.0)) and close(server["c"], t(-0.5, -0.5))


def test_fedprox_with_server_momentum_two_clients_by_hand():
    alg = fedprox(mu=0.1, server_optimizer=momentum(lr=0.5, momentum=0.9))
    server = alg.init(t(1.0, 1.0))
    # weighted mean of y: (1*[0, 2] + 3*[2, 2]) / 4 = [1.5, 2]; g = x - mean = [-0.5, -1]
    server = play(alg, server, {}, [local(0, t(0.0, 2.0), n=1), local(1, t(2.0, 2.0), n=3)])
    assert close(server["velocity"], t(-0.5, -1.0)) and close(server["params"], t(1.25, 1.5))  # x - 0.5 v
    # round 2: one client at y = [1.25, 1.5] (no move): g = 0, v = 0.9 v, x - 0.5 * 0.9 v
    server = play(alg, server, {}, [local(0, t(1.25, 1.5))])
    assert close(server["velocity"], t(-0.45, -0.9)) and close(server["params"], t(1.475, 1.95))
    assert close(alg.local_loss(t(2.0, 1.0), server, {}).reshape(1), t(0.05 * (0.525**2 + 0.95**2)))


def test_sgd_lr_one_on_weights_is_the_exact_average():
    alg = fedprox(mu=0.0, server_optimizer=sgd(1.0))
    server = play(alg, alg.init(t(0.3, 0.7)), {}, [local(0, t(0.1, 0.2), n=1), local(1, t(0.4, 0.8), n=1)])
    assert torch.equal(server["params"], (t(0.1, 0.2).double() + t(0.4, 0.8).double()).div(2).float())


@pytest.mark.parametrize("preset,optimizer", [("fedavgm", "momentum"), ("fedadam", "adam"), ("fedyogi", "yogi"),
                                              ("fedadagrad", "adagrad")])
def test_presets_are_fedavg_plus_a_server_optimizer(make_cfg, preset, optimizer):
    common = ["rounds=2", "num_clients=4", "client_fraction=0.5", "local_epochs=1", "checkpoint_every=0"]
    a = run(make_cfg(f"algorithm={preset}", *common))
    b = run(make_cfg("algorithm=fedavg", "algorithm.upload=pseudo_gradient", "algorithm.drop_stragglers=false",
                     f"server_optimizer={optimizer}", *common))
    assert torch.equal(a.server["params"], b.server["params"])
    assert a.summary["algorithm"] == preset and b.summary["algorithm"] == "fedavg"


def test_command_line_server_optimizer_beats_the_preset(make_cfg):
    cfg = make_cfg("algorithm=fedadam", "server_optimizer=yogi", "server_optimizer.lr=0.05")
    assert cfg.server_optimizer._target_.endswith(".yogi") and cfg.algorithm.server_optimizer.lr == 0.05


@pytest.mark.parametrize("algorithm", ["fedsgd", "fedadmm"])
def test_algorithms_with_their_own_server_step_refuse_a_server_optimizer(make_cfg, algorithm):
    with pytest.raises(ConfigError, match=rf"server_optimizer: algorithm {algorithm} has its own server step"):
        run(make_cfg(f"algorithm={algorithm}", "server_optimizer=adam"))
    with pytest.raises(ConfigError, match="server_optimizer"):
        run(make_cfg(f"algorithm={algorithm}", "server_optimizer.lr=0.5"))


@pytest.mark.parametrize("override,field", [("server_optimizer.lr=0", "server_optimizer.lr must be > 0"),
                                            ("server_optimizer=momentum server_optimizer.momentum=1",
                                             r"server_optimizer.momentum must be in \[0, 1\)"),
                                            ("server_optimizer=adam server_optimizer.tau=0", "server_optimizer.tau must be > 0")])
def test_bad_server_optimizer_options_name_the_field(make_cfg, override, field):
    with pytest.raises(ConfigError, match=field):
        run(make_cfg(*override.split()))
