"""Byzantine clients: model poisoning of their updates, or data poisoning of their labels.

A fixed set of ``round(fraction * N)`` clients is Byzantine for the whole run (a seeded choice).
Every sampled client first does its honest local work; then the attack replaces each Byzantine
participant's *update* (``y - x`` for local training, the gradient for FedSGD) before its upload, on
every topology. Omniscient attacks see the honest participants' updates of the same call (all
participants' when none is honest). Attacks (``attack`` group):

* ``sign_flip``: ``-scale * u`` (the update reversed).
* ``gaussian``: ``N(0, sigma^2)`` per coordinate instead of the update.
* ``scaling``: ``scale * u``: boosting for model replacement (Bagdasaryan, Veit, Hua, Estrin,
  Shmatikov, "How To Backdoor Federated Learning", AISTATS 2020).
* ``label_flip``: data poisoning, the Byzantine clients train on labels ``C - 1 - y``.
* ``alie``: ``mu - z sigma`` from the coordinate-wise mean and standard deviation of the honest updates,
  ``z`` by default from the paper's ``s = floor(n / 2 + 1) - f``, ``z = Phi^-1((n - s) / n)`` (Baruch,
  Baruch, Goldberg, "A Little Is Enough: Circumventing Defenses For Distributed Learning", NeurIPS 2019).
* ``ipm``: ``-epsilon * mean(honest updates)`` (Xie, Koyejo, Gupta, "Fall of Empires: Breaking
  Byzantine-tolerant SGD by Inner Product Manipulation", UAI 2020).

Every random draw is keyed by (seed, round, client), so backends and resumed runs agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import torch
from torch import Tensor

from fedbench.algorithms.base import LocalResult, State
from fedbench.errors import require
from fedbench.seeding import numpy_generator, torch_generator

# (honest updates k x d, the Byzantine client's own honest update, participants n, Byzantine f, generator) -> update
Poison = Callable[[Tensor, Tensor, int, int, torch.Generator], Tensor]


@dataclass(frozen=True)
class Attack:
    """A named attack: ``poison`` rewrites a Byzantine update (None for data poisoning only)."""

    name: str
    fraction: float
    poison: Poison | None = None
    flips_labels: bool = False
    seed: int = 0
    options: dict = field(default_factory=dict)


def byzantine_clients(num_clients: int, fraction: float, seed: int) -> frozenset[int]:
    """The run's ``round(fraction * num_clients)`` Byzantine clients (a seeded choice, fixed for the run)."""
    count = int(round(fraction * num_clients))
    chosen = numpy_generator(seed, "byzantine").choice(num_clients, size=count, replace=False) if count else []
    return frozenset(int(c) for c in chosen)


def alie_z(n: int, f: int) -> float:
    """Baruch et al.'s z_max: ``s = floor(n/2 + 1) - f``, ``z = Phi^-1((n - s) / n)``."""
    s = math.floor(n / 2 + 1) - f
    p = min(max((n - s) / n, 1e-6), 1 - 1e-6)
    return float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(p, dtype=torch.float64)))


def update_of(res: LocalResult, start: Tensor, gradient: bool) -> Tensor:
    """What the client sends as its update: the gradient (``gradient`` work, FedSGD) or ``y - x``."""
    return res.grad if gradient else res.params - start


def with_update(res: LocalResult, start: Tensor, update: Tensor, gradient: bool) -> LocalResult:
    """``res`` carrying ``update`` instead of its honest one."""
    if gradient:
        return replace(res, grad=update.to(res.grad.dtype))
    return replace(res, params=(start + update).to(res.params.dtype))


def poison_results(attack: Attack, byzantine: frozenset[int], results: Sequence[LocalResult],
                   start: Callable[[int], State], r: int, gradient: bool = False) -> list[LocalResult]:
    """Replace the Byzantine participants' updates (honest work of the others untouched); ``gradient``:
    the clients computed gradients (FedSGD), not local models."""
    bad = [res for res in results if res.client in byzantine]
    if attack.poison is None or not bad:
        return list(results)
    starts = {res.client: start(res.client)["params"] for res in results}
    updates = {res.client: update_of(res, starts[res.client], gradient) for res in results}
    honest = [updates[res.client] for res in results if res.client not in byzantine] or list(updates.values())
    stacked = torch.stack([u.to(torch.float64) for u in honest])
    out = []
    for res in results:
        if res.client in byzantine:
            gen = torch_generator(attack.seed, r, res.client, "attack")
            new = attack.poison(stacked, updates[res.client].to(torch.float64), len(results), len(bad), gen)
            res = with_update(res, starts[res.client], new, gradient)
        out.append(res)
    return out


def flip_labels(y: Tensor, num_classes: int) -> Tensor:
    """Label-flip poisoning: ``C - 1 - y``."""
    return (num_classes - 1 - y).to(y.dtype)


# ---- config factories (the ``attack`` group) -----------------------------------------------------


def _fraction(fraction: float) -> float:
    require(isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0 <= fraction < 1,
            "attack.fraction", "in [0, 1)", fraction)
    return float(fraction)


def none() -> None:
    """No attack (every client honest)."""
    return None


def sign_flip(fraction: float = 0.2, scale: float = 1.0, seed: int = 0) -> Attack:
    """Byzantine clients send ``-scale`` times their update."""
    require(isinstance(scale, (int, float)) and scale > 0, "attack.scale", "> 0", scale)
    name = "sign_flip" if scale == 1 else f"sign_flip_x{scale:g}"
    return Attack(name, _fraction(fraction), lambda h, own, n, f, g: -scale * own, seed=seed,
                  options={"scale": scale})


def gaussian(fraction: float = 0.2, sigma: float = 1.0, seed: int = 0) -> Attack:
    """Byzantine clients send Gaussian noise ``N(0, sigma^2)`` per coordinate."""
    require(isinstance(sigma, (int, float)) and sigma > 0, "attack.sigma", "> 0", sigma)

    def poison(h: Tensor, own: Tensor, n: int, f: int, gen: torch.Generator) -> Tensor:
        return sigma * torch.randn(own.shape, generator=gen, dtype=torch.float64).to(own.device)

    return Attack("gaussian", _fraction(fraction), poison, seed=seed, options={"sigma": sigma})


def scaling(fraction: float = 0.2, scale: float = 10.0, seed: int = 0) -> Attack:
    """Byzantine clients boost their update by ``scale`` (model replacement)."""
    require(isinstance(scale, (int, float)) and scale > 0, "attack.scale", "> 0", scale)
    return Attack("scaling", _fraction(fraction), lambda h, own, n, f, g: scale * own, seed=seed,
                  options={"scale": scale})


def label_flip(fraction: float = 0.2, seed: int = 0) -> Attack:
    """Byzantine clients train honestly on flipped labels ``C - 1 - y``."""
    return Attack("label_flip", _fraction(fraction), None, flips_labels=True, seed=seed)


def alie(fraction: float = 0.2, z: float | None = None, seed: int = 0) -> Attack:
    """"A Little Is Enough": ``mean - z * std`` of the honest updates (``z`` null: the paper's z_max)."""
    require(z is None or (isinstance(z, (int, float)) and z >= 0), "attack.z", "null (the paper's z_max) or >= 0", z)

    def poison(h: Tensor, own: Tensor, n: int, f: int, gen: torch.Generator) -> Tensor:
        std = h.std(0, unbiased=False)
        return h.mean(0) - (alie_z(n, f) if z is None else z) * std

    return Attack("alie", _fraction(fraction), poison, seed=seed, options={"z": z})


def ipm(fraction: float = 0.2, epsilon: float = 0.1, seed: int = 0) -> Attack:
    """Inner product manipulation: ``-epsilon`` times the honest updates' mean."""
    require(isinstance(epsilon, (int, float)) and epsilon > 0, "attack.epsilon", "> 0", epsilon)
    return Attack("ipm", _fraction(fraction), lambda h, own, n, f, g: -epsilon * h.mean(0), seed=seed,
                  options={"epsilon": epsilon})
