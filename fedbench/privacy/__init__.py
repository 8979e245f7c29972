"""Differential privacy mechanisms as records, like every other part: how a mechanism combines the uploads (DP-FedAvg's
clipped noisy sum), what it adds to a client's plan (local DP-SGD's per-sample clipping and noise), and its epsilon
for what actually ran. The mechanisms: :mod:`.dp_fedavg` (client-level) and :mod:`.local_dp` (sample-level); the
accountants they use: :mod:`.accounting`.

``summary.json`` records the sampling, the adjacency, the accountant (library and version) and its own error bound
(PRV's ``eps_error``; RDP's conversion is an upper bound with no numerical error term).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from torch import Tensor

from fedbench.aggregators import Combine
from fedbench.errors import require, require_choice

ACCOUNTANTS = ("rdp", "prv")


@dataclass(frozen=True)
class Release:
    """What a run released so far, for its epsilon: the client sampling, N and the expected cohort m, the server's
    noisy aggregations, and each client's (dataset size, DP-SGD steps released) with the batch size."""

    sampling: str
    num_clients: int
    cohort: int
    aggregations: int
    released: Sequence[tuple[int, int]] = ()
    batch_size: int | None = None


@dataclass(frozen=True)
class Privacy:
    """A differential-privacy mechanism as pure functions.

    Attributes:
        name: ``dp_fedavg`` | ``local_dp`` (logs, reports, errors).
        clip, noise_multiplier, delta, accountant, seed: its settings (see each mechanism's module).
        epsilon: ``Release -> epsilon`` at ``delta`` for what ran.
        accounting: ``sampling -> dict`` of how that epsilon is computed (``summary.json``).
        combine: ``(expected clients, round, like) -> Combine`` replacing the aggregator's mean on the server (None:
            the mechanism leaves the combine alone). Such a mechanism releases noise every round, even an empty one.
        client_dp: (clip, noise multiplier) of DP-SGD added to every client's plan (None: no per-sample noise).
        client_sampling: what ``client_sampling=auto`` resolves to under it (``poisson`` where the accountant
            assumes Poisson sampling).
        needs: the topology capabilities its accounting assumes (:class:`fedbench.topology.TopologyCapabilities`).
        check_sampling: refuses a client sampling its accountant cannot account for (before any work).
    """

    name: str
    clip: float
    noise_multiplier: float
    delta: float
    epsilon: Callable[[Release], float]
    accounting: Callable[[str], dict[str, Any]]
    combine: Callable[[int, int, "Tensor | None"], Combine] | None = None
    client_dp: tuple[float, float] | None = None
    client_sampling: str = "fixed"
    needs: tuple[str, ...] = ()
    check_sampling: Callable[[str], None] = lambda sampling: None
    accountant: str = "rdp"
    seed: int = 0
    options: dict = field(default_factory=dict)

    @property
    def per_sample(self) -> bool:
        """DP-SGD inside local training (sample-level), counted per client's released steps."""
        return self.client_dp is not None

    @property
    def releases_when_empty(self) -> bool:
        """A server-side mechanism adds its noise even to a round nobody reported in: a deterministic "unchanged"
        would tell that the cohort was empty, which the accountant does not allow."""
        return self.combine is not None


def check_settings(clip: float, noise_multiplier: float, delta: float, accountant: str) -> None:
    """Every mechanism's four numbers, checked before anything is built."""
    num = (int, float)
    require(isinstance(clip, num) and not isinstance(clip, bool) and clip > 0, "privacy.clip", "> 0", clip)
    require(isinstance(noise_multiplier, num) and not isinstance(noise_multiplier, bool) and noise_multiplier >= 0,
            "privacy.noise_multiplier", ">= 0", noise_multiplier)
    require(isinstance(delta, num) and not isinstance(delta, bool) and 0 < delta < 1, "privacy.delta", "in (0, 1)", delta)
    require_choice(accountant, "privacy.accountant", ACCOUNTANTS)


def none() -> None:
    """No differential privacy."""
    return None
