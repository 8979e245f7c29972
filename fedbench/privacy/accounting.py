"""The accountants behind every ``epsilon``: opacus' RDP and PRV for Poisson-subsampled Gaussian mechanisms
(add/remove adjacency), and Google's dp-accounting for fixed-size cohorts sampled without replacement (replace-one
adjacency, Wang, Balle, Kasiviswanathan, AISTATS 2019, Theorem 27)."""

from __future__ import annotations

import functools
import math
from importlib.metadata import version
from typing import Any

PRV_EPS_ERROR = 0.01  # opacus' PRVAccountant.get_epsilon default: the reported epsilon is within this of the true one


@functools.lru_cache(maxsize=4096)
def epsilon(accountant: str, noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon of ``steps`` Poisson-subsampled Gaussian steps, from opacus' own accountant (its history set to
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


def opacus_record(accountant: str, sampling: str) -> dict[str, Any]:
    """``summary.json``'s accounting fields for opacus' Poisson accountants."""
    return {"client_sampling": sampling, "adjacency": "add_remove", "accountant": accountant,
            "accountant_library": f"opacus {version('opacus')}",
            "epsilon_error": PRV_EPS_ERROR if accountant == "prv" else None}


def fixed_size_record(sampling: str) -> dict[str, Any]:
    """``summary.json``'s accounting fields for fixed-size cohorts (dp-accounting's RDP)."""
    return {"client_sampling": sampling, "adjacency": "replace_one", "accountant": "rdp",
            "accountant_library": f"dp-accounting {version('dp-accounting')}", "epsilon_error": None}
