"""Which clients take part in a round."""

from __future__ import annotations

import math

import torch

from fedbench.seeding import torch_generator


def clients_per_round(num_clients: int, fraction: float) -> int:
    """m = max(floor(C * N), 1), as in McMahan et al. (2017), Algorithm 1."""
    return max(1, math.floor(fraction * num_clients + 1e-9))


def sample_clients(num_clients: int, fraction: float, seed: int, round_: int) -> list[int]:
    """Sorted ids of the m clients sampled without replacement in ``round_`` (seeded per round)."""
    m = clients_per_round(num_clients, fraction)
    if m == num_clients:
        return list(range(num_clients))
    chosen = torch.randperm(num_clients, generator=torch_generator(seed, round_, "sample"))[:m]
    return sorted(chosen.tolist())
