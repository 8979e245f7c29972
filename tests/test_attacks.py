"""Byzantine attacks: each poisoned update by hand, the seeded Byzantine set, label flipping at build,
FedSGD's gradients poisoned instead of models, and the option checks."""

import re
from pathlib import Path

import pytest
import torch
from torch.distributions import Normal

from fedbench import attacks
from fedbench.algorithms.base import LocalResult
from fedbench.build import build
from fedbench.errors import ConfigError
from fedbench.run import run

START = {"params": torch.zeros(2)}
HONEST = {0: [1.0, 0.0], 1: [0.0, 1.0]}
BYZ = frozenset({2})


def results(gradient=False):
    rows = {**HONEST, 2: [2.0, 2.0]}
    if gradient:
        return [LocalResult(c, START["params"], 10, 1, 0.0, 0.0, 0.1, grad=torch.tensor(v)) for c, v in rows.items()]
    return [LocalResult(c, torch.tensor(v), 10, 5, 0.0, 0.0, 0.1) for c, v in rows.items()]


def poisoned(attack, gradient=False):
    out = attacks.poison_results(attack, BYZ, results(gradient), lambda c: START, r=1, gradient=gradient)
    honest = [o.grad if gradient else o.params for o in out[:2]]
    assert [h.tolist() for h in honest] == [HONEST[0], HONEST[1]]  # honest clients untouched
    return out[2].grad if gradient else out[2].params


def test_each_poisoned_update_by_hand():
    assert poisoned(attacks.sign_flip(0.2)).tolist() == [-2.0, -2.0]
    assert poisoned(attacks.sign_flip(0.2, scale=4)).tolist() == [-8.0, -8.0]
    assert poisoned(attacks.scaling(0.2, scale=10)).tolist() == [20.0, 20.0]
    # IPM: -epsilon x the honest mean [0.5, 0.5]
    assert torch.allclose(poisoned(attacks.ipm(0.2, epsilon=0.1)), torch.tensor([-0.05, -0.05]))
    # ALIE: honest mean [0.5, 0.5], population std [0.5, 0.5]; z = 1 -> [0, 0]
    assert torch.allclose(poisoned(attacks.alie(0.2, z=1.0)), torch.zeros(2))
    # the paper's z: n = 3, f = 1 -> s = floor(3/2 + 1) - 1 = 1, z = Phi^-1(2/3)
    z = float(Normal(0.0, 1.0).icdf(torch.tensor(2 / 3, dtype=torch.float64)))
    assert attacks.alie_z(3, 1) == pytest.approx(z) and z == pytest.approx(0.4307, abs=1e-4)
    assert torch.allclose(poisoned(attacks.alie(0.2)), torch.tensor([0.5 - 0.5 * z] * 2))


def test_gaussian_noise_replaces_the_update_and_is_keyed_by_round_and_client():
    big = {"params": torch.zeros(20000)}
    res = [LocalResult(0, torch.ones(20000), 1, 1, 0.0, 0.0, 0.1), LocalResult(2, torch.ones(20000), 1, 1, 0.0, 0.0, 0.1)]
    out = attacks.poison_results(attacks.gaussian(0.2, sigma=3.0), BYZ, res, lambda c: big, r=1)
    assert torch.equal(out[0].params, torch.ones(20000))
    assert float(out[1].params.std()) == pytest.approx(3.0, rel=0.03) and abs(float(out[1].params.mean())) < 0.1
    again = attacks.poison_results(attacks.gaussian(0.2, sigma=3.0), BYZ, res, lambda c: big, r=1)
    other = attacks.poison_results(attacks.gaussian(0.2, sigma=3.0), BYZ, res, lambda c: big, r=2)
    assert torch.equal(out[1].params, again[1].params) and not torch.equal(out[1].params, other[1].params)


def test_fedsgd_gradients_are_poisoned_not_the_start_model():
    assert poisoned(attacks.sign_flip(0.2), gradient=True).tolist() == [-2.0, -2.0]


def test_byzantine_set_is_seeded_and_sized():
    chosen = attacks.byzantine_clients(20, 0.2, seed=0)
    assert len(chosen) == 4 and chosen == attacks.byzantine_clients(20, 0.2, seed=0)
    assert chosen != attacks.byzantine_clients(20, 0.2, seed=1)
    assert attacks.byzantine_clients(20, 0.0, seed=0) == frozenset()


def test_label_flip_poisons_only_the_byzantine_clients_data(make_cfg):
    clean = build(make_cfg())
    flipped = build(make_cfg("attack=label_flip"))
    bad = flipped.threat.byzantine
    assert len(bad) == 4
    for c in range(20):
        y0, y1 = clean.client_data[c][1], flipped.client_data[c][1]
        assert torch.equal(y1, 9 - y0) if c in bad else torch.equal(y1, y0)


@pytest.mark.parametrize("overrides,message", [
    (["attack=sign_flip", "attack.fraction=1.0"], "attack.fraction must be in [0, 1) (got 1.0)"),
    (["attack=alie", "attack.fraction=-0.1"], "attack.fraction must be in [0, 1) (got -0.1)"),
    (["attack=scaling", "attack.scale=0"], "attack.scale must be > 0"),
    (["attack=ipm", "attack.epsilon=0"], "attack.epsilon must be > 0"),
    (["attack=sign_flip", "attack.fraction=0.01"], "attack.fraction: 0.01 x num_clients 20 rounds to 0"),
])
def test_bad_attack_options_are_refused_before_any_work(make_cfg, overrides, message):
    cfg = make_cfg(*overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        run(cfg)
    assert not Path(cfg.output_dir, "metrics.csv").exists()
