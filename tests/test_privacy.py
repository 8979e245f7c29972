"""Differential privacy: DP-FedAvg's clipping and noise on the sum, epsilon equal to the accountants' own values
(opacus for Poisson cohorts, dp-accounting for fixed-size ones), Poisson cohorts and batches, empty rounds, buffers,
local DP-SGD through opacus (noise-free it is plain FedAvg), and the refusals."""

import math
import re

import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant

from fedbench.errors import ConfigError
from fedbench.privacy.accounting import fixed_size_epsilon
from fedbench.privacy.dp_fedavg import dp_sum_mean
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
            for _ in range(r * int(1 / (32 / n))):  # Poisson batches: int(1 / q) steps per epoch, as opacus
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
    (["privacy=dp_fedavg", "model=mlp_bn", "batch_size=8"], "model: privacy=dp_fedavg clips and noises the parameters, "
     "but this model has buffers"),
    (["privacy=dp_fedavg", "client_sampling=fixed", "privacy.accountant=prv"], "privacy.accountant must be rdp with "
     "client_sampling=fixed"),
    (["client_sampling=sometimes"], "client_sampling must be one of ['auto', 'fixed', 'poisson']"),
    (["topology=async", "client_sampling=poisson"], "client_sampling must be fixed or auto with topology=async"),
])
def test_bad_privacy_settings_are_refused_before_any_work(make_cfg, overrides, message):
    cfg = make_cfg(*overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        run(cfg)


def test_dp_fedavg_with_batch_norm_runs_when_buffers_stay_local(make_cfg):
    """With task.local_buffers the clients' BatchNorm statistics never reach the server: it keeps the initial ones."""
    from fedbench.build import build
    from fedbench.params import get_buffers

    over = ["privacy=dp_fedavg", "model=mlp_bn", "batch_size=8", "task.local_buffers=true", "rounds=1",
            "local_epochs=1", "checkpoint_every=0"]
    result = run(make_cfg(*over))
    assert torch.equal(result.server["buffers"], get_buffers(build(make_cfg(*over)).task))
    assert math.isfinite(result.summary["epsilon"])


def test_fixed_size_epsilon_is_dp_accountings_own_value_for_sampling_without_replacement(make_cfg):
    """client_sampling=fixed: m of N without replacement, replace-one adjacency (sensitivity 2 clip), from
    dp-accounting; the issue's example (q = 0.25, sigma = 1, 10 rounds, delta = 1e-5) gives 30.7."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    result = run(make_cfg("privacy=dp_fedavg", "client_sampling=fixed", "privacy.noise_multiplier=1.0", "rounds=3",
                          "local_epochs=1", "checkpoint_every=0"))
    for r, row in enumerate(result.rows, start=1):
        acc = RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
        acc.compose(dp_accounting.SelfComposedDpEvent(
            dp_accounting.SampledWithoutReplacementDpEvent(20, 5, dp_accounting.GaussianDpEvent(0.5)), r))
        assert row["epsilon"] == pytest.approx(acc.get_epsilon(1e-5), rel=1e-9)
        assert row["clients"] == 5
    s = result.summary
    assert (s["client_sampling"], s["adjacency"], s["accountant"]) == ("fixed", "replace_one", "rdp")
    assert s["accountant_library"].startswith("dp-accounting ") and s["epsilon_error"] is None
    assert fixed_size_epsilon(1.0, 20, 5, 10, 1e-5) == pytest.approx(30.70, abs=0.01)


def test_dp_fedavg_defaults_to_poisson_cohorts_and_records_its_accounting(make_cfg):
    result = run(make_cfg("privacy=dp_fedavg", "privacy.accountant=prv", "rounds=6", "local_epochs=1",
                          "checkpoint_every=0"))
    s = result.summary
    assert (s["client_sampling"], s["adjacency"], s["accountant"], s["epsilon_error"]) == \
        ("poisson", "add_remove", "prv", 0.01)
    assert len({r["clients"] for r in result.rows}) > 1  # the cohort size varies


def _empty_first_round_seed(num_clients: int, fraction: float) -> int:
    from fedbench.sampling import sample_clients

    return next(s for s in range(100) if not sample_clients(num_clients, fraction, s, 1, "poisson"))


def test_an_empty_poisson_round_keeps_the_model_without_dp_and_releases_only_noise_with_dp(make_cfg):
    """q = 0.05 of 20 clients: some rounds sample nobody. Without privacy the model is unchanged; under DP-FedAvg the
    server still adds N(0, (z clip)^2) / qN (qN = 1 here), so the output does not reveal the empty cohort."""
    seed = _empty_first_round_seed(20, 0.05)
    common = [f"seed={seed}", "client_fraction=0.05", "rounds=1", "local_epochs=1", "checkpoint_every=0"]
    plain = run(make_cfg(*common, "client_sampling=poisson"))
    private = run(make_cfg(*common, "privacy=dp_fedavg", "privacy.noise_multiplier=0.5", "privacy.clip=2.0"))
    assert plain.rows[0]["clients"] == 0 and private.rows[0]["clients"] == 0
    from fedbench.build import build
    from fedbench.params import get_flat

    init = get_flat(build(make_cfg(*common)).task)
    assert torch.equal(plain.server["params"], init)
    moved = private.server["params"] - init
    assert float(moved.std()) == pytest.approx(0.5 * 2.0 / 1, rel=0.05) and private.rows[0]["epsilon"] > 0


def test_poisson_cohorts_have_mean_qn_and_vary():
    from fedbench.sampling import sample_clients

    sizes = [len(sample_clients(40, 0.25, 0, r, "poisson")) for r in range(1, 2001)]
    mean = sum(sizes) / len(sizes)
    assert mean == pytest.approx(10, abs=3 * math.sqrt(40 * 0.25 * 0.75 / 2000))
    assert min(sizes) < 8 and max(sizes) > 12
    assert all(len(sample_clients(40, 0.25, 0, r, "fixed")) == 10 for r in range(1, 50))


def test_local_dp_sgd_batches_are_poisson_with_mean_b(make_cfg):
    """Under privacy=local_dp each step's batch is Poisson-sampled (q = B / n_k): sizes vary, mean B."""
    from fedbench.build import build
    from fedbench.client import run_client
    from fedbench.params import get_flat

    exp = build(make_cfg("privacy=local_dp", "batch_size=16", "num_clients=5", "local_epochs=20"))
    sizes, step = [], exp.task.training_step

    def recording(batch, i):
        sizes.append(len(batch[1]))
        return step(batch, i)

    exp.task.training_step = recording
    n = len(exp.client_data[0][1])
    out = run_client(exp.task, exp.algorithm, exp.plan, exp.client_data[0], {"params": get_flat(exp.task)}, {}, 0, 1, 20)
    assert out.steps == 20 * int(n / 16) == len(sizes)
    assert sum(sizes) / len(sizes) == pytest.approx(16, abs=4 * math.sqrt(16 / len(sizes)))
    assert len(set(sizes)) > 5
