"""Differential privacy: DP-FedAvg's clipping and noise on the sum, epsilon equal to opacus' own
accountant, local DP-SGD through opacus (noise-free it is plain FedAvg), and the refusals."""

import math
import re

import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant

from fedbench.errors import ConfigError
from fedbench.privacy import dp_sum_mean
from fedbench.run import run
from fedbench.seeding import torch_generator


def test_noise_on_the_sum_has_std_noise_multiplier_times_clip():
    d, z, clip = 400_000, 0.7, 2.0
    zeros = [torch.zeros(d) for _ in range(5)]
    noise = dp_sum_mean(zeros, None, clip, z, 1.0, torch_generator(0, 1, "test"))
    # sampling error of a std estimate over d draws: about 1 / sqrt(2 d) = 0.11 %
    assert float(noise.std()) == pytest.approx(z * clip, rel=0.005)
    assert abs(float(noise.mean())) < 5 * z * clip / math.sqrt(d)
    # the fixed denominator (the expected number of clients) divides sum and noise alike
    again = dp_sum_mean(zeros, None, clip, z, 4.0, torch_generator(0, 1, "test"))
    assert torch.allclose(again, noise / 4)


def test_updates_are_clipped_around_the_center_before_the_sum():
    center = torch.tensor([1.0, 1.0])
    ups = [center + torch.tensor([30.0, 40.0]), center + torch.tensor([0.3, 0.4])]  # norms 50 and 0.5
    out = dp_sum_mean(ups, center, 1.0, 0.0, 2.0, torch_generator(0, 1, "test"))
    # ([0.6, 0.8] + [0.3, 0.4]) / 2 around the center
    assert torch.allclose(out, center + torch.tensor([0.45, 0.6]))


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_epsilon_column_equals_the_accountants_own_value(make_cfg, accountant):
    result = run(make_cfg("privacy=dp_fedavg", f"privacy.accountant={accountant}", "privacy.noise_multiplier=1.1",
                          "privacy.delta=1e-4", "rounds=3", "local_epochs=1"))
    q = 5 / 20  # m = floor(0.25 x 20) clients of N = 20 per round
    acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    for row in result.rows:
        acc.step(noise_multiplier=1.1, sample_rate=q)
        assert row["epsilon"] == pytest.approx(acc.get_epsilon(1e-4), rel=1e-9)
    assert result.summary["epsilon"] == result.rows[-1]["epsilon"]
    assert 0 < result.rows[0]["epsilon"] < result.rows[-1]["epsilon"]


def test_dp_fedavg_without_noise_and_with_a_huge_clip_is_fedavg_with_uniform_weights(make_cfg):
    # digits' 1438 training images in two clients of 719: uniform weights = sample weights; C = 1: the
    # expected number of clients is the actual one
    common = ["num_clients=2", "client_fraction=1.0", "rounds=2", "local_epochs=1"]
    plain = run(make_cfg(*common))
    private = run(make_cfg(*common, "privacy=dp_fedavg", "privacy.noise_multiplier=0", "privacy.clip=1e9"))
    assert torch.allclose(plain.server["params"], private.server["params"], atol=1e-6)
    assert private.rows[-1]["epsilon"] == math.inf


def test_local_dp_without_noise_and_clipping_is_plain_local_sgd(make_cfg):
    # full-batch local steps (B = n_k): opacus divides the summed per-sample gradients by n_k
    common = ["rounds=2", "local_epochs=2", "batch_size=null", "num_clients=10"]
    plain = run(make_cfg(*common))
    private = run(make_cfg(*common, "privacy=local_dp", "privacy.noise_multiplier=0", "privacy.clip=1e9"))
    assert torch.allclose(plain.server["params"], private.server["params"], atol=1e-5)


def test_local_dp_epsilon_is_the_worst_clients_own_accounting(make_cfg):
    result = run(make_cfg("privacy=local_dp", "privacy.noise_multiplier=1.0", "rounds=2", "local_epochs=1",
                          "num_clients=10", "client_fraction=1.0", "batch_size=32"))
    sizes = [143, 144]  # digits' 1437 training images over 10 IID clients
    for r, row in enumerate(result.rows, start=1):
        worst = 0.0
        for n in sizes:
            acc = RDPAccountant()
            for _ in range(r * math.ceil(n / 32)):
                acc.step(noise_multiplier=1.0, sample_rate=32 / n)
            worst = max(worst, acc.get_epsilon(1e-5))
        assert row["epsilon"] == pytest.approx(worst, rel=1e-9)


@pytest.mark.parametrize("overrides,message", [
    (["privacy=dp_fedavg", "privacy.clip=0"], "privacy.clip must be > 0 (got 0)"),
    (["privacy=dp_fedavg", "privacy.clip=-1"], "privacy.clip must be > 0 (got -1)"),
    (["privacy=dp_fedavg", "privacy.delta=0"], "privacy.delta must be in (0, 1) (got 0)"),
    (["privacy=local_dp", "privacy.delta=1.5"], "privacy.delta must be in (0, 1) (got 1.5)"),
    (["privacy=dp_fedavg", "privacy.noise_multiplier=-1"], "privacy.noise_multiplier must be >= 0"),
    (["privacy=dp_fedavg", "privacy.accountant=moments"], "privacy.accountant must be one of ['rdp', 'prv']"),
    (["privacy=dp_fedavg", "algorithm=scaffold"], "privacy: dp_fedavg replaces the mean"),
    (["privacy=dp_fedavg", "aggregator=median"], "aggregator must be mean with privacy=dp_fedavg"),
    (["privacy=dp_fedavg", "topology=hierarchical"], "privacy must be none with topology=hierarchical"),
    (["privacy=local_dp", "algorithm=fedprox"], "privacy: local_dp clips per-sample gradients"),
    (["privacy=local_dp", "model=mlp_bn", "batch_size=8"], "model: privacy=local_dp needs per-sample gradients"),
])
def test_bad_privacy_settings_are_refused_before_any_work(make_cfg, overrides, message):
    cfg = make_cfg(*overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        run(cfg)
