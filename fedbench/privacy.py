"""Differential privacy: DP-FedAvg (client-level, central noise) and local DP-SGD (sample-level).

* ``dp_fedavg``: McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent Language
  Models", ICLR 2018 (DP-FedAvg, fixed-denominator estimator). Each sampled client's update
  ``Delta_k`` (``y_k - x``, or its pseudo-gradient / gradient) is clipped to L2 norm ``clip``; the server
  sums the clipped updates, adds ``N(0, (noise_multiplier * clip)^2 I)`` to the sum and divides by the
  expected number of clients ``m = max(floor(C N), 1)``. Weights are uniform (sample counts would
  leak). The server optimizer then steps on that noisy mean as usual. Client-level epsilon after
  ``t`` rounds comes from opacus' accountant (``accountant: rdp`` or ``prv``) for the subsampled
  Gaussian mechanism with ``q = m / N``, ``sigma = noise_multiplier``, ``t`` steps, ``delta``.
  fedbench samples a fixed number of clients per round; like TensorFlow Federated and Flower, the
  accounting treats it as Poisson sampling with rate ``q``.
* ``local_dp``: DP-SGD on every client (Abadi et al., "Deep Learning with Differential Privacy", CCS
  2016) through opacus' ``GradSampleModule`` and ``DPOptimizer``: per-sample gradients clipped to
  ``clip``, Gaussian noise ``noise_multiplier * clip`` per step. Models qualify when opacus can compute
  per-sample gradients of all their layers (``logreg``, ``mlp``, ``cnn``, ``cifar_cnn``; not BatchNorm, e.g.
  ``mlp_bn``). The ``epsilon`` column is the largest sample-level epsilon of any client so far, from
  the DP-SGD steps it released (``q = B / n_k`` per step).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import Tensor

from fedbench.aggregators import Combine, clip_to_norm
from fedbench.errors import require, require_choice
from fedbench.seeding import torch_generator

ACCOUNTANTS = ("rdp", "prv")


@dataclass(frozen=True)
class Privacy:
    """A DP mechanism's settings (``kind``: ``dp_fedavg`` or ``local_dp``)."""

    kind: str
    clip: float
    noise_multiplier: float
    delta: float
    accountant: str = "rdp"
    seed: int = 0
    options: dict = field(default_factory=dict)


def dp_sum_mean(vectors: Sequence[Tensor], center: Tensor | None, clip: float, noise_multiplier: float,
                denominator: float, gen: torch.Generator) -> Tensor:
    """``center + (sum_k clip(v_k - center) + N(0, (z clip)^2 I)) / denominator`` (DP-FedAvg's estimate)."""
    x = torch.stack([v.to(torch.float64) for v in vectors])
    c = torch.zeros_like(x[0]) if center is None else center.to(torch.float64)
    total = clip_to_norm(x - c, clip).sum(0)
    noise = torch.randn(total.shape, generator=gen, dtype=torch.float64).to(total.device) * (noise_multiplier * clip)
    return (c + (total + noise) / denominator).to(vectors[0].dtype)


def dp_combine(privacy: Privacy, expected_clients: int, r: int) -> Combine:
    """Round ``r``'s DP-FedAvg combine (its noise keyed by (seed, round))."""
    gen = torch_generator(privacy.seed, r, "dp-noise", "server")

    def combine(vectors: Sequence[Tensor], weights: Sequence[float], center: Tensor | None = None) -> Tensor:
        return dp_sum_mean(vectors, center, privacy.clip, privacy.noise_multiplier, expected_clients, gen)

    return combine


@functools.lru_cache(maxsize=4096)
def epsilon(accountant: str, noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon of ``steps`` subsampled Gaussian steps, from opacus' own accountant (its history set to
    ``[(noise_multiplier, sample_rate, steps)]``); 0 before any step, inf without noise."""
    if steps == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    from opacus.accountants import PRVAccountant, RDPAccountant

    acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    acc.history = [(noise_multiplier, sample_rate, steps)]
    return float(acc.get_epsilon(delta))


def local_epsilon(privacy: Privacy, released: Iterable[tuple[int, int]], batch_size: int | None) -> float:
    """The largest sample-level epsilon over clients, each given as (its dataset size n_k, the DP-SGD
    steps it released so far) with sampling rate ``q = B / n_k`` (1 for full-batch steps)."""
    worst = 0.0
    for n, steps in released:
        q = 1.0 if batch_size is None else min(batch_size, n) / n
        worst = max(worst, epsilon(privacy.accountant, privacy.noise_multiplier, q, steps, privacy.delta))
    return worst


# ---- config factories (the ``privacy`` group) ----------------------------------------------------


def _check(clip: float, noise_multiplier: float, delta: float, accountant: str) -> None:
    num = (int, float)
    require(isinstance(clip, num) and not isinstance(clip, bool) and clip > 0, "privacy.clip", "> 0", clip)
    require(isinstance(noise_multiplier, num) and not isinstance(noise_multiplier, bool) and noise_multiplier >= 0,
            "privacy.noise_multiplier", ">= 0", noise_multiplier)
    require(isinstance(delta, num) and not isinstance(delta, bool) and 0 < delta < 1, "privacy.delta", "in (0, 1)", delta)
    require_choice(accountant, "privacy.accountant", ACCOUNTANTS)


def none() -> None:
    """No differential privacy."""
    return None


def dp_fedavg(clip: float = 1.0, noise_multiplier: float = 1.0, delta: float = 1e-5, accountant: str = "rdp",
              seed: int = 0) -> Privacy:
    """DP-FedAvg (McMahan et al. 2018): client-level clipping and central Gaussian noise."""
    _check(clip, noise_multiplier, delta, accountant)
    return Privacy("dp_fedavg", float(clip), float(noise_multiplier), float(delta), accountant, seed)


def local_dp(clip: float = 1.0, noise_multiplier: float = 1.0, delta: float = 1e-5, accountant: str = "rdp",
             seed: int = 0) -> Privacy:
    """Local DP-SGD on every client (Abadi et al. 2016) through opacus."""
    _check(clip, noise_multiplier, delta, accountant)
    return Privacy("local_dp", float(clip), float(noise_multiplier), float(delta), accountant, seed)
