"""Which clients take part in a round: a fixed-size cohort or Poisson sampling.

* ``fixed``: exactly m = max(floor(C N), 1) clients, sampled without replacement (McMahan et al. 2017,
  Algorithm 1).
* ``poisson``: every client joins independently with probability q = m / N, so the cohort size varies
  around m (mean qN = m) and may be empty; the sampling DP-FedAvg's accountant assumes (McMahan et al.
  2018). Under ``client_sampling=auto`` a privacy mechanism that needs it asks for it.

Draws are keyed by (seed, round), so every backend samples the same clients.
"""

from __future__ import annotations

import math

import torch

from fedbench.seeding import torch_generator

SAMPLINGS = ("fixed", "poisson")
CHOICES = ("auto", *SAMPLINGS)


def clients_per_round(num_clients: int, fraction: float) -> int:
    """m = max(floor(C * N), 1), as in McMahan et al. (2017), Algorithm 1 (Poisson's expected cohort)."""
    return max(1, math.floor(fraction * num_clients + 1e-9))


def resolve_sampling(choice: str, preferred: str | None) -> str:
    """``client_sampling``: ``auto`` takes what the privacy mechanism prefers (``preferred``), else ``fixed``."""
    return (preferred or "fixed") if choice == "auto" else choice


def sample_clients(num_clients: int, fraction: float, seed: int, round_: int, sampling: str = "fixed") -> list[int]:
    """Sorted ids of round ``round_``'s clients: m sampled without replacement (``fixed``) or each client with
    probability m / N (``poisson``), seeded per round."""
    m = clients_per_round(num_clients, fraction)
    gen = torch_generator(seed, round_, "sample")
    if sampling == "poisson":
        if m == num_clients:
            return list(range(num_clients))
        return torch.nonzero(torch.rand(num_clients, generator=gen) < m / num_clients).flatten().tolist()
    if m == num_clients:
        return list(range(num_clients))
    chosen = torch.randperm(num_clients, generator=gen)[:m]
    return sorted(chosen.tolist())
