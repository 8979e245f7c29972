"""Synthetic(alpha, beta): the naturally federated data of FedProx.

Li, Sahu, Zaheer, Sanjabi, Talwalkar, Smith. "Federated Optimization in Heterogeneous
Networks", MLSys 2020, Section 5.1. Device k has a softmax-regression model
``y = argmax(softmax(W_k x + b_k))`` with ``W_k, b_k ~ N(u_k, 1)``, ``u_k ~ N(0, alpha)``, and
inputs ``x_k ~ N(v_k, Sigma)`` with ``Sigma_jj = j^-1.2``, ``v_k ~ N(B_k, 1)``,
``B_k ~ N(0, beta)``. ``alpha`` controls how much local models differ, ``beta`` how much local
data differ. Device sizes follow a lognormal law (as in the paper's generator: lognormal(4, 2) + 50).
With ``iid=True`` every device shares one model and one input distribution (the paper's
Synthetic-IID). As in the reference generator, alpha and beta are standard deviations.
"""

from __future__ import annotations

import numpy as np

from fedbench.data.base import FederatedData, as_tensors
from fedbench.errors import require
from fedbench.seeding import numpy_generator

DIM, CLASSES = 60, 10


def _device_sizes(rng: np.random.Generator, num_devices: int, max_samples: int | None) -> np.ndarray:
    sizes = rng.lognormal(4, 2, num_devices).astype(int) + 50
    return np.minimum(sizes, max_samples) if max_samples else sizes


def _device_data(rng, n, alpha, beta, iid, shared) -> tuple[np.ndarray, np.ndarray]:
    cov = np.array([(j + 1) ** -1.2 for j in range(DIM)])
    if iid:
        w, b, v = shared
    else:
        u, big_b = rng.normal(0, alpha), rng.normal(0, beta)
        w, b = rng.normal(u, 1, (DIM, CLASSES)), rng.normal(u, 1, CLASSES)
        v = rng.normal(big_b, 1, DIM)
    x = rng.normal(v, np.sqrt(cov), (n, DIM))
    return x, np.argmax(x @ w + b, axis=1)


def synthetic(
    alpha: float = 1.0,
    beta: float = 1.0,
    num_devices: int = 30,
    iid: bool = False,
    test_fraction: float = 0.1,
    max_samples: int | None = None,
    seed: int = 0,
) -> FederatedData:
    """Generate Synthetic(alpha, beta) with ``num_devices`` devices (seeded).

    Args:
        alpha, beta: heterogeneity of models and of inputs across devices (>= 0).
        num_devices: devices; use ``partitioner=natural`` with ``num_clients`` equal to this.
        iid: the paper's Synthetic-IID variant (one shared model and input law).
        test_fraction: share of each device's samples held out; the test set is their union.
        max_samples: optional cap on a device's size (lognormal tails are long).
        seed: generator seed (data are fixed across run seeds unless changed).
    """
    require(alpha >= 0, "dataset.alpha", ">= 0", alpha)
    require(beta >= 0, "dataset.beta", ">= 0", beta)
    require(num_devices >= 1, "dataset.num_devices", ">= 1", num_devices)
    require(0 < test_fraction < 1, "dataset.test_fraction", "in (0, 1)", test_fraction)
    rng = numpy_generator(seed, "synthetic", int(alpha * 1000), int(beta * 1000))
    shared = (rng.normal(0, 1, (DIM, CLASSES)), rng.normal(0, 1, CLASSES), np.zeros(DIM))
    xs_tr, ys_tr, xs_te, ys_te, groups, offset = [], [], [], [], [], 0
    for n in _device_sizes(rng, num_devices, max_samples):
        x, y = _device_data(rng, int(n), alpha, beta, iid, shared)
        n_test = max(1, int(round(n * test_fraction)))
        xs_te.append(x[:n_test]), ys_te.append(y[:n_test])
        xs_tr.append(x[n_test:]), ys_tr.append(y[n_test:])
        groups.append(np.arange(offset, offset + len(y) - n_test))
        offset += len(y) - n_test
    x_train, y_train = as_tensors(np.concatenate(xs_tr), np.concatenate(ys_tr))
    x_test, y_test = as_tensors(np.concatenate(xs_te), np.concatenate(ys_te))
    name = "synthetic_iid" if iid else f"synthetic({alpha:g},{beta:g})"
    return FederatedData(name, x_train, y_train, x_test, y_test, CLASSES, groups=groups)
