"""Partitioners: coverage, skew (measured), label limits, seeding, infeasible requests."""

import time

import numpy as np
import pytest

from fedbench.errors import ConfigError
from fedbench.partition.common import label_counts
from fedbench.partition.dirichlet import dirichlet
from fedbench.partition.iid import iid
from fedbench.partition.natural import natural
from fedbench.partition.quantity import quantity
from fedbench.partition.shards import shards

LABELS = np.repeat(np.arange(10), 100)  # 1,000 samples, 100 per class
ALL = [iid(), dirichlet(alpha=0.5), shards(2), quantity(), quantity("powerlaw")]


def _max_label_share(parts) -> float:
    counts = label_counts(LABELS, parts, 10)
    return float((counts.max(1) / counts.sum(1)).mean())


@pytest.mark.parametrize("partitioner", ALL)
def test_every_sample_goes_to_exactly_one_client(partitioner):
    parts = partitioner(LABELS, 20, 0, None)
    assert len(parts) == 20 and min(len(p) for p in parts) >= 1
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(LABELS)))


@pytest.mark.parametrize("partitioner", ALL)
def test_seeds_reproduce_exactly_and_differ(partitioner):
    a, b, c = (partitioner(LABELS, 20, s, None) for s in (3, 3, 4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_dirichlet_small_alpha_is_skewed():
    skewed = _max_label_share(dirichlet(alpha=0.1, min_samples=1)(LABELS, 20, 0, None))
    near_iid = _max_label_share(dirichlet(alpha=100.0, min_samples=1)(LABELS, 20, 0, None))
    uniform = _max_label_share(iid()(LABELS, 20, 0, None))
    # measured with seed 0: about 0.7 of a client's data is its top label at alpha=0.1, ~0.2 when IID
    assert skewed > 0.6 and near_iid < 0.3 and uniform < 0.3


@pytest.mark.parametrize("k", [1, 2, 3])
def test_shards_give_each_client_at_most_k_labels(k):
    labels = np.random.default_rng(0).integers(0, 10, 1234)  # unequal class sizes
    parts = shards(k)(labels, 25, 0, None)
    counts = label_counts(labels, parts, 10)
    assert ((counts > 0).sum(1) <= k).all()
    assert counts.sum() == len(labels)


def test_mcmahan_mnist_shards_are_300_each():
    labels = np.repeat(np.arange(10), 6000)  # balanced stand-in for MNIST's 60,000
    parts = shards(2)(labels, 100, 0, None)
    assert {len(p) for p in parts} == {600}


def test_quantity_sizes_are_skewed_but_labels_iid():
    parts = quantity(sigma=2.0)(LABELS, 10, 0, None)
    sizes = sorted(len(p) for p in parts)
    assert sizes[-1] > 5 * sizes[0]


def test_infeasible_dirichlet_fails_fast_with_advice():
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="partitioner.min_samples"):
        dirichlet(alpha=0.01, min_samples=40, max_attempts=50)(LABELS, 20, 0, None)
    assert time.perf_counter() - t0 < 10
    with pytest.raises(ConfigError, match="num_clients"):
        dirichlet(min_samples=100)(LABELS, 20, 0, None)  # 20 x 100 > 1,000 samples: rejected before sampling


@pytest.mark.parametrize("make,field", [(lambda: dirichlet(alpha=0), "partitioner.alpha"),
                                        (lambda: dirichlet(alpha=-1), "partitioner.alpha"),
                                        (lambda: shards(0), "partitioner.shards_per_client"),
                                        (lambda: quantity("zipf"), "partitioner.distribution")])
def test_bad_options_name_the_field(make, field):
    with pytest.raises(ConfigError, match=field):
        make()


def test_shards_need_one_shard_per_class():
    with pytest.raises(ConfigError, match="shards_per_client"):
        shards(2)(LABELS, 3, 0, None)


def test_natural_uses_dataset_groups_and_checks_count():
    groups = [np.arange(0, 5), np.arange(5, 12)]
    assert [list(p) for p in natural()(LABELS[:12], 2, 0, groups)] == [list(g) for g in groups]
    with pytest.raises(ConfigError, match="num_clients must equal"):
        natural()(LABELS[:12], 3, 0, groups)
    with pytest.raises(ConfigError, match="naturally federated"):
        natural()(LABELS, 2, 0, None)
