"""Robust aggregation: what replaces the (weighted) mean of the uploads in the server update.

An aggregator is a plain function ``combine(vectors, weights, center) -> vector``. ``center`` is the
point the uploads are updates around: the current global model for ``weights`` uploads, None (zero)
for pseudo-gradients and gradients. Only centered clipping depends on it; every other rule here is
translation-equivariant. The rules:

* ``mean``: the sample-weighted mean (:func:`fedbench.params.weighted_mean`, unchanged numbers).
* ``median``: coordinate-wise median; ``trimmed_mean``: per coordinate, drop the ``floor(beta n)``
  largest and smallest values and average the rest. Yin, Chen, Ramchandran, Bartlett,
  "Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates", ICML 2018. Unweighted.
* ``krum``: each upload's score is the summed squared distance to its ``n - f - 2`` nearest others;
  Krum returns the lowest-scoring upload, multi-Krum (``m > 1``) the mean of the ``m`` lowest.
  Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with Adversaries: Byzantine Tolerant
  Gradient Descent", NeurIPS 2017. Needs ``n > 2f + 2``. Multi-Krum's mean is unweighted as in the
  paper (``weighted: false``, the default); ``weighted: true`` weights it by sample counts, as Flower's
  ``aggregate_krum`` does. Distances are exact float64 sums of squared differences (not
  ``torch.cdist``, whose matrix-multiply form loses ~1e-3 relative precision when the uploads share a
  large common part, e.g. ``weights`` uploads around one global model).
* ``geometric_median``: RFA's smoothed Weiszfeld iterations from the weighted mean,
  ``v <- sum_i b_i w_i / sum_i b_i`` with ``b_i = alpha_i / max(nu, ||v - w_i||)``. Pillutla, Kakade,
  Harchaoui, "Robust Aggregation for Federated Learning", IEEE TSP 2022 (Algorithm 2). Weighted.
* ``centered_clipping``: ``v <- v + sum_i alpha_i clip_tau(w_i - v)`` repeated ``iters`` times from
  ``v = center`` (the current model, i.e. a zero update). Karimireddy, He, Jaggi, "Learning from
  History for Byzantine Robust Optimization", ICML 2021. The paper centers at the previous
  aggregate of worker momenta; fedbench's stateless variant centers at "no update". Weighted.

Ties are broken by upload order (Krum's ``argsort`` is stable).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import Tensor

from fedbench.errors import ConfigError, require
from fedbench.params import normalized_weights, weighted_mean

log = logging.getLogger("fedbench")

Combine = Callable[[Sequence[Tensor], Sequence[float], "Tensor | None"], Tensor]


@dataclass(frozen=True)
class Aggregator:
    """A named ``combine`` rule and the fewest uploads it is defined for (``min_uploads``); ``is_mean``: the plain
    weighted mean every algorithm defaults to (any other rule replaces it, which needs a server and an algorithm
    that averages its uploads); ``check_uploads(n, where)`` refuses, before any work, a rule that cannot work with
    ``n`` uploads per aggregation (``where`` says how n arises)."""

    name: str
    combine: Combine
    min_uploads: int = 1
    options: dict = field(default_factory=dict)
    is_mean: bool = False
    check_uploads: Callable[[int, str], None] = lambda n, where: None


def _stack(vectors: Sequence[Tensor]) -> Tensor:
    if not vectors:
        raise ValueError("no uploads to aggregate")
    return torch.stack([v.to(torch.float64) for v in vectors])


def mean_combine(vectors: Sequence[Tensor], weights: Sequence[float], center: Tensor | None = None) -> Tensor:
    """The weighted mean as a ``Combine`` (``center`` unused)."""
    return weighted_mean(vectors, weights)


def coordinate_median(vectors: Sequence[Tensor]) -> Tensor:
    """Coordinate-wise median (the mean of the two middle values for an even count)."""
    s = _stack(vectors).sort(dim=0).values
    n = len(s)
    mid = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return mid.to(vectors[0].dtype)


def trimmed_mean(vectors: Sequence[Tensor], beta: float) -> Tensor:
    """Coordinate-wise mean after dropping the ``floor(beta n)`` largest and smallest values."""
    s = _stack(vectors).sort(dim=0).values
    b = math.floor(beta * len(s))
    return s[b : len(s) - b].mean(0).to(vectors[0].dtype)


def squared_distances(x: Tensor) -> Tensor:
    """``(n, n)`` exact squared Euclidean distances between the rows of ``x``: a row of differences at a
    time (``n`` passes over ``(n, P)``; no ``|a|^2 + |b|^2 - 2ab`` cancellation)."""
    return torch.stack([((x - row) ** 2).sum(1) for row in x])


def krum_scores(vectors: Sequence[Tensor], f: int) -> Tensor:
    """Each vector's Krum score: summed squared distance to its ``max(n - f - 2, 1)`` nearest others."""
    x = _stack(vectors)
    d2 = squared_distances(x)
    n = len(x)
    k = max(n - f - 2, 1)
    d2.fill_diagonal_(math.inf)
    return d2.sort(dim=1).values[:, : min(k, n - 1)].sum(1) if n > 1 else torch.zeros(1, dtype=torch.float64, device=x.device)


def krum(vectors: Sequence[Tensor], f: int, m: int = 1, weights: Sequence[float] | None = None) -> Tensor:
    """Krum (``m = 1``) or multi-Krum: the mean of the ``m`` lowest-scoring vectors (unweighted, or weighted by
    ``weights`` when given)."""
    chosen = krum_selection(vectors, f, m)
    picked = [vectors[i] for i in chosen]
    if weights is not None:
        return weighted_mean(picked, [weights[i] for i in chosen])
    return _stack(picked).mean(0).to(vectors[0].dtype)


def krum_selection(vectors: Sequence[Tensor], f: int, m: int = 1) -> list[int]:
    """Indices of the ``m`` vectors (at most ``n - f``, at least 1) Krum selects, best first."""
    n = len(vectors)
    if n <= 2 * f + 2:
        log.warning("krum: %d uploads this round, fewer than the 2f + 3 = %d Krum needs; scoring against the "
                    "%d nearest", n, 2 * f + 3, max(n - f - 2, 1))
    scores = krum_scores(vectors, f)
    return torch.argsort(scores, stable=True)[: max(min(m, n - f), 1)].tolist()


def geometric_median(vectors: Sequence[Tensor], weights: Sequence[float], iters: int = 3, nu: float = 1e-6) -> Tensor:
    """Smoothed Weiszfeld (RFA): ``iters`` reweighting steps from the weighted mean."""
    x, alpha = _stack(vectors), normalized_weights(weights)
    v = alpha @ x
    for _ in range(iters):
        beta = alpha / torch.clamp((x - v).norm(dim=1), min=nu)
        v = (beta @ x) / beta.sum()
    return v.to(vectors[0].dtype)


def clip_to_norm(x: Tensor, tau: float) -> Tensor:
    """Each row of ``x`` scaled down to L2 norm at most ``tau`` (rows already inside are unchanged)."""
    norms = x.norm(dim=-1, keepdim=True)
    return x * torch.clamp(tau / torch.clamp(norms, min=1e-300), max=1.0)


def centered_clipping(vectors: Sequence[Tensor], weights: Sequence[float], center: Tensor | None, tau: float,
                      iters: int = 1) -> Tensor:
    """``v <- v + sum_i alpha_i clip_tau(w_i - v)``, ``iters`` times from ``v = center`` (zero if None)."""
    x, alpha = _stack(vectors), normalized_weights(weights)
    v = torch.zeros_like(x[0]) if center is None else center.to(torch.float64)
    for _ in range(iters):
        v = v + alpha @ clip_to_norm(x - v, tau)
    return v.to(vectors[0].dtype)


# ---- config factories (the ``aggregator`` group) -------------------------------------------------


def mean() -> Aggregator:
    """The sample-weighted mean: every algorithm's default."""
    return Aggregator("mean", mean_combine, is_mean=True)


def median() -> Aggregator:
    """Coordinate-wise median (Yin et al. 2018)."""
    return Aggregator("median", lambda vs, ws, c=None: coordinate_median(vs))


def trimmed(beta: float = 0.1) -> Aggregator:
    """Coordinate-wise trimmed mean (Yin et al. 2018); ``beta`` in [0, 0.5) is trimmed at each end."""
    require(isinstance(beta, (int, float)) and 0 <= beta < 0.5, "aggregator.beta", "in [0, 0.5)", beta)
    return Aggregator("trimmed_mean", lambda vs, ws, c=None: trimmed_mean(vs, beta), options={"beta": beta})


def krum_rule(f: int = 1, m: int = 1, weighted: bool = False) -> Aggregator:
    """Krum / multi-Krum (Blanchard et al. 2017) tolerating ``f`` Byzantine uploads per round; ``weighted``
    averages multi-Krum's pick by sample counts (Flower's convention) instead of uniformly (the paper's)."""
    require(isinstance(f, int) and not isinstance(f, bool) and f >= 0, "aggregator.f", "an integer >= 0", f)
    require(isinstance(m, int) and not isinstance(m, bool) and m >= 1, "aggregator.m", "an integer >= 1", m)
    require(isinstance(weighted, bool), "aggregator.weighted", "true or false", weighted)
    name = "krum" if m == 1 else "multi_krum"

    def check_uploads(n: int, where: str) -> None:
        if n < 2 * f + 3:
            raise ConfigError(f"aggregator.f: {name} needs n > 2f + 2 uploads per aggregation; this run aggregates "
                              f"n = {n} ({where}), so f must be <= {max((n - 3) // 2, 0)} (got f={f})")
        if m > n - f:
            raise ConfigError(f"aggregator.m: {name} averages the m best of the n - f uploads it keeps; this run "
                              f"aggregates n = {n} ({where}) with f = {f}, so m must be <= {n - f} (got m={m})")

    return Aggregator(name, lambda vs, ws, c=None: krum(vs, f, m, ws if weighted else None),
                      min_uploads=max(2 * f + 3, m + f), options={"f": f, "m": m, "weighted": weighted},
                      check_uploads=check_uploads)


def rfa(iters: int = 3, nu: float = 1e-6) -> Aggregator:
    """Geometric median by smoothed Weiszfeld (Pillutla et al. 2022)."""
    require(isinstance(iters, int) and iters >= 1, "aggregator.iters", "an integer >= 1", iters)
    require(isinstance(nu, (int, float)) and nu > 0, "aggregator.nu", "> 0", nu)
    return Aggregator("geometric_median", lambda vs, ws, c=None: geometric_median(vs, ws, iters, nu),
                      options={"iters": iters, "nu": nu})


def centered_clip(tau: float = 1.0, iters: int = 1) -> Aggregator:
    """Centered clipping (Karimireddy et al. 2021) with radius ``tau``."""
    require(isinstance(tau, (int, float)) and tau > 0, "aggregator.tau", "> 0", tau)
    require(isinstance(iters, int) and iters >= 1, "aggregator.iters", "an integer >= 1", iters)
    return Aggregator("centered_clipping", lambda vs, ws, c=None: centered_clipping(vs, ws, c, tau, iters),
                      options={"tau": tau, "iters": iters})
