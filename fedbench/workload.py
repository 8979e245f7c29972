"""How much local work each sampled client does in a round (systems heterogeneity).

* ``local_epochs_max``: when set, each client's epochs are drawn uniformly from
  ``[local_epochs, local_epochs_max]`` per round.
* ``straggler_fraction``: that share of the sampled clients are stragglers and do fewer epochs,
  uniform in ``[1, E - 1]`` (Li et al., "Federated Optimization in Heterogeneous Networks",
  MLSys 2020, Section 5.2). Algorithms with ``drop_stragglers`` (FedAvg, as in that paper) discard
  the stragglers' work; the others (FedProx) aggregate their partial work.

Every draw is keyed by (seed, round, client), so work does not depend on execution order.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedbench.seeding import numpy_generator


@dataclass(frozen=True)
class Workload:
    """Per-client epochs for one round and which sampled clients straggle."""

    epochs: dict[int, int]
    stragglers: frozenset[int]


def assign_work(
    clients: list[int], round_: int, seed: int, epochs: int, epochs_max: int | None, straggler_fraction: float
) -> Workload:
    """Decide every sampled client's epochs for ``round_``."""
    plan = {}
    for c in clients:
        hi = epochs if epochs_max is None else epochs_max
        plan[c] = int(numpy_generator(seed, round_, c, "epochs").integers(epochs, hi + 1))
    count = int(round(len(clients) * straggler_fraction))
    chosen = numpy_generator(seed, round_, "stragglers").choice(clients, size=count, replace=False) if count else []
    for c in chosen:
        plan[int(c)] = int(numpy_generator(seed, round_, int(c), "straggler-epochs").integers(1, max(1, plan[int(c)] - 1) + 1))
    return Workload(plan, frozenset(int(c) for c in chosen))


def speed_factors(num_clients: int, seed: int, sigma: float, factors: list[float] | None) -> list[float]:
    """Per-client device speed (1 = this machine): ``factors`` as given, else ``exp(N(0, sigma^2))``
    drawn once per run (sigma 0: all 1). A client's simulated time is its measured compute time
    divided by its speed; a synchronous round lasts as long as its slowest client."""
    if factors is not None:
        return [float(f) for f in factors]
    if sigma == 0:
        return [1.0] * num_clients
    return [float(v) for v in numpy_generator(seed, "client-speed").lognormal(0.0, sigma, num_clients)]
