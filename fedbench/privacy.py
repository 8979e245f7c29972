"""Differential privacy: DP-FedAvg (client-level, central noise) and local DP-SGD (sample-level).

* ``dp_fedavg``: McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent Language
  Models", ICLR 2018 (DP-FedAvg, fixed-denominator estimator). Each sampled client's update
  ``Delta_k`` (``y_k - x``, or its pseudo-gradient / gradient) is clipped to L2 norm ``clip``; the server
  sums the clipped updates, adds ``N(0, (noise_multiplier * clip)^2 I)`` to the sum and divides by the
  expected number of clients ``qN = m = max(floor(C N), 1)``. Weights are uniform (sample counts would
  leak). The server optimizer then steps on that noisy mean as usual. A round whose cohort is empty
  still releases the noise (the model moves by ``noise / qN``): a deterministic "unchanged" would tell
  that nobody, hence not the target client, was sampled, which the accountant does not allow.
  Only the parameters go through the mechanism: a model with buffers (BatchNorm statistics) is refused
  unless ``task.local_buffers=true`` keeps them on the clients (FedBN), since their plain mean would be
  published outside the clipped, noised sum.

  Client-level epsilon after ``t`` rounds depends on how clients are sampled (``client_sampling``):

  - ``poisson`` (the default under ``dp_fedavg``): every client joins each round independently with
    probability ``q = m / N``, so the cohort size varies. This is the subsampled Gaussian mechanism that
    opacus' accountants (``accountant: rdp`` or ``prv``) compute, under add/remove-one-client adjacency:
    the reported epsilon is the accountant's value for what runs.
  - ``fixed``: exactly ``m`` of ``N`` clients without replacement. Accounted with Google's dp-accounting
    (``SampledWithoutReplacementDpEvent``, RDP of Wang, Balle, Kasiviswanathan, AISTATS 2019, Theorem 27),
    which holds under replace-one adjacency (``N`` public): replacing one client's clipped update changes
    the sum by up to ``2 clip``, so the event's noise multiplier is ``noise_multiplier / 2``. With
    q = 0.25, sigma = 1, 10 rounds, delta = 1e-5: 30.7 against Poisson's 6.8. PRV covers Poisson only.

* ``local_dp``: DP-SGD on every client (Abadi et al., "Deep Learning with Differential Privacy", CCS
  2016) through opacus' ``GradSampleModule`` and ``DPOptimizer``: per-sample gradients clipped to
  ``clip``, Gaussian noise ``noise_multiplier * clip`` per step. Batches are Poisson-sampled (opacus'
  ``UniformWithReplacementSampler``: each local sample joins each step with probability ``q = B / n_k``,
  ``int(1 / q)`` steps per local epoch, as opacus' ``DPDataLoader``), the sampling its accountant assumes.
  Models qualify when opacus can compute per-sample gradients of all their layers (``logreg``, ``mlp``,
  ``cnn``, ``cifar_cnn``; not BatchNorm, e.g. ``mlp_bn``). The ``epsilon`` column is the largest
  sample-level epsilon of any client so far (add/remove-one-sample adjacency), from the DP-SGD steps it released.

``summary.json`` records the sampling, the adjacency, the accountant (library and version) and its own
error bound (PRV's ``eps_error``; RDP's conversion is an upper bound with no numerical error term).
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
PRV_EPS_ERROR = 0.01  # opacus' PRVAccountant.get_epsilon default: the reported epsilon is within this of the true one


@dataclass(frozen=True)
class Privacy:
    """A DP mechanism's settings (``kind``: ``dp_fedavg`` or ``local_dp``); ``client_sampling`` is the sampling
    ``client_sampling=auto`` resolves to under this mechanism (``poisson`` where its accountant assumes it)."""

    kind: str
    clip: float
    noise_multiplier: float
    delta: float
    accountant: str = "rdp"
    seed: int = 0
    options: dict = field(default_factory=dict)
    client_sampling: str = "fixed"


def dp_sum_mean(vectors: Sequence[Tensor], center: Tensor | None, clip: float, noise_multiplier: float,
                denominator: float, gen: torch.Generator, like: Tensor | None = None) -> Tensor:
    """``center + (sum_k clip(v_k - center) + N(0, (z clip)^2 I)) / denominator`` (DP-FedAvg's estimate); with no
    vectors (an empty Poisson cohort) the sum is zero and the noise is still added (``like``: its shape)."""
    ref = vectors[0] if vectors else (center if center is not None else like)
    if ref is None:
        raise ValueError("dp_sum_mean: no vectors and no center or like tensor to take the shape from")
    c = torch.zeros(ref.shape, dtype=torch.float64, device=ref.device) if center is None else center.to(torch.float64)
    total = clip_to_norm(torch.stack([v.to(torch.float64) for v in vectors]) - c, clip).sum(0) if vectors \
        else torch.zeros_like(c)
    noise = torch.randn(total.shape, generator=gen, dtype=torch.float64).to(total.device) * (noise_multiplier * clip)
    return (c + (total + noise) / denominator).to(ref.dtype)


def dp_combine(privacy: Privacy, expected_clients: int, r: int, like: Tensor | None = None) -> Combine:
    """Round ``r``'s DP-FedAvg combine (its noise keyed by (seed, round)); ``like`` gives the shape of an empty
    round's noise when the uploads are updates (no center)."""
    gen = torch_generator(privacy.seed, r, "dp-noise", "server")

    def combine(vectors: Sequence[Tensor], weights: Sequence[float], center: Tensor | None = None) -> Tensor:
        return dp_sum_mean(vectors, center, privacy.clip, privacy.noise_multiplier, expected_clients, gen, like)

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


@functools.lru_cache(maxsize=4096)
def fixed_size_epsilon(noise_multiplier: float, num_clients: int, cohort: int, rounds: int, delta: float) -> float:
    """Epsilon of ``rounds`` Gaussian sums over ``cohort`` of ``num_clients`` clients sampled without replacement,
    under replace-one adjacency (sensitivity ``2 clip``: the event's noise multiplier is half the mechanism's), from
    dp-accounting's RDP accountant (Wang, Balle, Kasiviswanathan 2019); 0 before any round, inf without noise."""
    if rounds == 0:
        return 0.0
    if noise_multiplier == 0:
        return math.inf
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    event = dp_accounting.SampledWithoutReplacementDpEvent(
        num_clients, cohort, dp_accounting.GaussianDpEvent(noise_multiplier / 2))
    acc = RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    acc.compose(dp_accounting.SelfComposedDpEvent(event, rounds))
    return float(acc.get_epsilon(delta))


def accounting(privacy: Privacy, sampling: str) -> dict:
    """What ``summary.json`` records of how ``epsilon`` was computed: the sampling it assumes, the neighbouring
    relation, the accountant (library, version) and the accountant's own error bound on epsilon."""
    from importlib.metadata import version

    if privacy.kind == "dp_fedavg" and sampling == "fixed":
        return {"client_sampling": sampling, "adjacency": "replace_one", "accountant": "rdp",
                "accountant_library": f"dp-accounting {version('dp-accounting')}", "epsilon_error": None}
    return {"client_sampling": sampling, "adjacency": "add_remove", "accountant": privacy.accountant,
            "accountant_library": f"opacus {version('opacus')}",
            "epsilon_error": PRV_EPS_ERROR if privacy.accountant == "prv" else None,
            **({"batch_sampling": "poisson"} if privacy.kind == "local_dp" else {})}


def check_sampling(privacy: Privacy | None, sampling: str) -> None:
    """PRV is computed for Poisson sampling only: refuse it with fixed-size cohorts under DP-FedAvg."""
    if privacy is not None and privacy.kind == "dp_fedavg" and sampling == "fixed":
        require(privacy.accountant == "rdp", "privacy.accountant", "rdp with client_sampling=fixed (fixed-size "
                "cohorts are accounted by dp-accounting's RDP for sampling without replacement; prv covers Poisson "
                "sampling: set client_sampling=poisson)", privacy.accountant)


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
    return Privacy("dp_fedavg", float(clip), float(noise_multiplier), float(delta), accountant, seed,
                   client_sampling="poisson")


def local_dp(clip: float = 1.0, noise_multiplier: float = 1.0, delta: float = 1e-5, accountant: str = "rdp",
             seed: int = 0) -> Privacy:
    """Local DP-SGD on every client (Abadi et al. 2016) through opacus."""
    _check(clip, noise_multiplier, delta, accountant)
    return Privacy("local_dp", float(clip), float(noise_multiplier), float(delta), accountant, seed)
