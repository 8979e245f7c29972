"""DP-FedAvg: client-level differential privacy with central Gaussian noise.

McMahan, Ramage, Talwar, Zhang, "Learning Differentially Private Recurrent Language Models", ICLR 2018 (DP-FedAvg,
fixed-denominator estimator). Each sampled client's update ``Delta_k`` (``y_k - x``, or its pseudo-gradient /
gradient) is clipped to L2 norm ``clip``; the server sums the clipped updates, adds ``N(0, (noise_multiplier *
clip)^2 I)`` to the sum and divides by the expected number of clients ``qN = m = max(floor(C N), 1)``. Weights are
uniform (sample counts would leak). The server optimizer then steps on that noisy mean as usual. A round whose cohort
is empty still releases the noise (the model moves by ``noise / qN``): a deterministic "unchanged" would tell that
nobody, hence not the target client, was sampled, which the accountant does not allow. Only the parameters go through
the mechanism: a model with buffers (BatchNorm statistics) is refused unless ``task.local_buffers=true`` keeps them on
the clients (FedBN), since their plain mean would be published outside the clipped, noised sum.

Client-level epsilon after ``t`` rounds depends on how clients are sampled (``client_sampling``):

- ``poisson`` (the default under ``dp_fedavg``): every client joins each round independently with probability
  ``q = m / N``, so the cohort size varies. This is the subsampled Gaussian mechanism that opacus' accountants
  (``accountant: rdp`` or ``prv``) compute, under add/remove-one-client adjacency: the reported epsilon is the
  accountant's value for what runs.
- ``fixed``: exactly ``m`` of ``N`` clients without replacement. Accounted with Google's dp-accounting
  (``SampledWithoutReplacementDpEvent``, RDP of Wang, Balle, Kasiviswanathan, AISTATS 2019, Theorem 27), which holds
  under replace-one adjacency (``N`` public): replacing one client's clipped update changes the sum by up to
  ``2 clip``, so the event's noise multiplier is ``noise_multiplier / 2``. With q = 0.25, sigma = 1, 10 rounds,
  delta = 1e-5: 30.7 against Poisson's 6.8. PRV covers Poisson only.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from fedbench.aggregators import Combine, clip_to_norm
from fedbench.errors import require
from fedbench.privacy import Privacy, Release, check_settings
from fedbench.privacy.accounting import epsilon, fixed_size_epsilon, fixed_size_record, opacus_record
from fedbench.seeding import torch_generator


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


def dp_fedavg(clip: float = 1.0, noise_multiplier: float = 1.0, delta: float = 1e-5, accountant: str = "rdp",
              seed: int = 0) -> Privacy:
    """DP-FedAvg (McMahan et al. 2018): client-level clipping and central Gaussian noise (module docstring)."""
    check_settings(clip, noise_multiplier, delta, accountant)
    clip, sigma, delta = float(clip), float(noise_multiplier), float(delta)

    def combine(expected_clients: int, r: int, like: Tensor | None = None) -> Combine:
        gen = torch_generator(seed, r, "dp-noise", "server")  # round r's noise, keyed by (seed, round)

        def noisy_mean(vectors: Sequence[Tensor], weights: Sequence[float], center: Tensor | None = None) -> Tensor:
            return dp_sum_mean(vectors, center, clip, sigma, expected_clients, gen, like)

        return noisy_mean

    def client_level_epsilon(release: Release) -> float:
        if release.sampling == "poisson":
            return epsilon(accountant, sigma, release.cohort / release.num_clients, release.aggregations, delta)
        return fixed_size_epsilon(sigma, release.num_clients, release.cohort, release.aggregations, delta)

    def accounting(sampling: str) -> dict:
        return opacus_record(accountant, sampling) if sampling == "poisson" else fixed_size_record(sampling)

    def check_sampling(sampling: str) -> None:
        require(sampling == "poisson" or accountant == "rdp", "privacy.accountant", "rdp with client_sampling=fixed "
                "(fixed-size cohorts are accounted by dp-accounting's RDP for sampling without replacement; prv covers "
                "Poisson sampling: set client_sampling=poisson)", accountant)

    return Privacy("dp_fedavg", clip, sigma, delta, client_level_epsilon, accounting, combine=combine,
                   client_sampling="poisson", needs=("single_aggregation",), check_sampling=check_sampling,
                   accountant=accountant, seed=seed)
