"""scikit-learn's 8x8 handwritten digits (1,797 images, ships with scikit-learn: works offline)."""

from __future__ import annotations

from sklearn.datasets import load_digits

from fedbench.data.base import FederatedData, as_tensors, stratified_split
from fedbench.errors import require
from fedbench.seeding import numpy_generator


def digits(test_fraction: float = 0.2, split_seed: int = 0) -> FederatedData:
    """Load digits as (N, 1, 8, 8) images scaled to [0, 1] with a stratified, seeded test split.

    Args:
        test_fraction: share of each class held out for testing, in (0, 1).
        split_seed: seed of the train/test split (fixed across run seeds so test sets match).
    """
    require(0 < test_fraction < 1, "dataset.test_fraction", "in (0, 1)", test_fraction)
    bunch = load_digits()
    x = bunch.images.reshape(-1, 1, 8, 8) / 16.0
    y = bunch.target
    train, test = stratified_split(y, test_fraction, numpy_generator(split_seed, "digits-split"))
    x_train, y_train = as_tensors(x[train], y[train])
    x_test, y_test = as_tensors(x[test], y[test])
    return FederatedData("digits", x_train, y_train, x_test, y_test, num_classes=10)
