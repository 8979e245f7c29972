"""Robust aggregators against hand computations (Krum's choice and tie-breaking included), and their
option checks."""

import math
import re

import pytest
import torch

from fedbench import aggregators as agg
from fedbench.errors import ConfigError


def vecs(*rows):
    return [torch.tensor(r, dtype=torch.float32) for r in rows]


def test_mean_is_the_weighted_mean():
    out = agg.mean().combine(vecs([1.0, 2.0], [4.0, 8.0]), [1, 3], None)
    assert torch.allclose(out, torch.tensor([3.25, 6.5]))


def test_coordinate_median_odd_and_even():
    assert torch.equal(agg.median().combine(vecs([1, 5], [2, 0], [10, 3]), [1, 1, 1], None), torch.tensor([2.0, 3.0]))
    # even count: the mean of the two middle values, per coordinate; weights are ignored
    out = agg.median().combine(vecs([1], [3], [10], [4]), [100, 1, 1, 1], None)
    assert torch.equal(out, torch.tensor([3.5]))


def test_trimmed_mean_drops_floor_beta_n_at_each_end():
    assert torch.equal(agg.trimmed(0.2).combine(vecs([1], [2], [3], [4], [100]), [1] * 5, None), torch.tensor([3.0]))
    # beta n = 0.25 * 4 = 1 per end: mean(3, 4)
    assert torch.equal(agg.trimmed(0.25).combine(vecs([1], [3], [10], [4]), [1] * 4, None), torch.tensor([3.5]))
    # beta n = 0.19 * 5 rounds down to 0: the plain mean
    assert torch.allclose(agg.trimmed(0.19).combine(vecs([1], [2], [3], [4], [100]), [1] * 5, None), torch.tensor([22.0]))


def test_krum_scores_and_choice_by_hand():
    xs = vecs([0.0], [1.0], [2.0], [10.0], [11.0])
    # n = 5, f = 1: each score sums the squared distances to its n - f - 2 = 2 nearest others
    # 0: 1 + 4 = 5; 1: 1 + 1 = 2; 2: 1 + 4 = 5; 10: 1 + 64 = 65; 11: 1 + 81 = 82
    assert agg.krum_scores(xs, 1).tolist() == [5.0, 2.0, 5.0, 65.0, 82.0]
    assert torch.equal(agg.krum_rule(f=1).combine(xs, [1] * 5, None), torch.tensor([1.0]))
    # multi-Krum m = 2: [1] then the first of the tied [0] and [2] (stable order): mean 0.5
    assert agg.krum_selection(xs, 1, 2) == [1, 0]
    assert torch.equal(agg.krum_rule(f=1, m=2).combine(xs, [1] * 5, None), torch.tensor([0.5]))
    assert torch.equal(agg.krum_rule(f=1, m=3).combine(xs, [1] * 5, None), torch.tensor([1.0]))


def test_multi_krum_weighted_by_samples_is_flowers_convention():
    xs = vecs([0.0], [1.0], [2.0], [10.0], [11.0])
    # m = 2 picks [1] (weight 3) and [0] (weight 1): unweighted 0.5 (paper), weighted (3*1 + 1*0) / 4 = 0.75
    assert torch.equal(agg.krum_rule(f=1, m=2).combine(xs, [1, 3, 1, 1, 1], None), torch.tensor([0.5]))
    assert agg.krum_rule(f=1, m=2, weighted=True).combine(xs, [1, 3, 1, 1, 1], None).item() == pytest.approx(0.75)


def test_krum_scores_are_exact_for_uploads_sharing_a_large_offset():
    """30 uploads = 1000 + small differences (weights uploads around one model): every score within 1e-12
    relative of an exact float64 sum (math.fsum of the squared differences); torch.cdist is off by ~1e-3."""
    g = torch.Generator().manual_seed(0)
    xs = [1000.0 + 1e-3 * torch.randn(2000, generator=g, dtype=torch.float64) for _ in range(30)]
    f = 3
    rows = [x.tolist() for x in xs]
    d2 = [[math.fsum((a - b) ** 2 for a, b in zip(ri, rj)) for rj in rows] for ri in rows]
    k = 30 - f - 2
    exact = [math.fsum(sorted(d for j, d in enumerate(row) if j != i)[:k]) for i, row in enumerate(d2)]
    scores = agg.krum_scores(xs, f).tolist()
    assert max(abs(s - e) / e for s, e in zip(scores, exact)) < 1e-12
    stacked = torch.stack(xs)
    cdist = torch.cdist(stacked, stacked).pow(2).fill_diagonal_(math.inf).sort(1).values[:, :k].sum(1).tolist()
    assert max(abs(s - e) / e for s, e in zip(cdist, exact)) > 1e-9  # what the old formula gave


def test_krum_ignores_an_outlier_the_mean_follows():
    xs = vecs([1.0, 1.0], [1.1, 0.9], [0.9, 1.1], [1.0, 1.05], [-50.0, 80.0])
    # scores (2 nearest): [1, 1] 0.0025 + 0.02 = 0.0225; [1, 1.05] 0.0025 + 0.0125 = 0.015 (the lowest)
    out = agg.krum_rule(f=1).combine(xs, [1] * 5, None)
    assert torch.equal(out, torch.tensor([1.0, 1.05]))
    assert agg.mean().combine(xs, [1] * 5, None)[0] < -9


def test_geometric_median_one_weiszfeld_step_and_the_fermat_point():
    xs = vecs([0.0, 0.0], [1.0, 0.0], [0.0, 1.0])
    # from the mean (1/3, 1/3): distances sqrt(2)/3, sqrt(5)/3, sqrt(5)/3; weights 1/d
    b0, b1 = 3 / math.sqrt(2), 3 / math.sqrt(5)
    one = agg.rfa(iters=1).combine(xs, [1, 1, 1], None)
    assert torch.allclose(one, torch.tensor([b1 / (b0 + 2 * b1)] * 2))
    # the geometric median of this triangle is its Fermat point (t, t) with 6t^2 - 6t + 1 = 0
    t = (6 - math.sqrt(12)) / 12
    assert torch.allclose(agg.rfa(iters=200).combine(xs, [1, 1, 1], None), torch.tensor([t, t]), atol=1e-5)


def test_centered_clipping_by_hand():
    xs = vecs([3.0, 4.0], [0.3, 0.4])
    # center 0, tau 1: [3, 4] (norm 5) is clipped to [0.6, 0.8]; [0.3, 0.4] is inside
    assert torch.allclose(agg.centered_clip(tau=1.0, iters=1).combine(xs, [1, 1], None), torch.tensor([0.45, 0.6]))
    # around the center [3, 4]: [0.3, 0.4] - c = [-2.7, -3.6] (norm 4.5) clipped to [-0.6, -0.8]
    c = torch.tensor([3.0, 4.0])
    assert torch.allclose(agg.centered_clip(tau=1.0, iters=1).combine(xs, [1, 1], c), torch.tensor([2.7, 3.6]))


@pytest.mark.parametrize("factory,kwargs,message", [
    (agg.trimmed, {"beta": 0.5}, "aggregator.beta must be in [0, 0.5)"),
    (agg.krum_rule, {"f": -1}, "aggregator.f must be an integer >= 0"),
    (agg.krum_rule, {"m": 0}, "aggregator.m must be an integer >= 1"),
    (agg.rfa, {"nu": 0}, "aggregator.nu must be > 0"),
    (agg.centered_clip, {"tau": 0}, "aggregator.tau must be > 0"),
])
def test_bad_aggregator_options(factory, kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        factory(**kwargs)
