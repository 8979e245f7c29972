"""Local DP-SGD: sample-level differential privacy on every client.

Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar, Zhang, "Deep Learning with Differential Privacy", CCS 2016,
through opacus' ``GradSampleModule`` and ``DPOptimizer``: per-sample gradients clipped to ``clip``, Gaussian noise
``noise_multiplier * clip`` per step. Batches are Poisson-sampled (opacus' ``UniformWithReplacementSampler``: each
local sample joins each step with probability ``q = B / n_k``, ``int(1 / q)`` steps per local epoch, as opacus'
``DPDataLoader``), the sampling its accountant assumes. Models qualify when opacus can compute per-sample gradients of
all their layers (``logreg``, ``mlp``, ``cnn``, ``cifar_cnn``; not BatchNorm, e.g. ``mlp_bn``). The ``epsilon``
column is the largest sample-level epsilon of any client so far (add/remove-one-sample adjacency), from the DP-SGD
steps it released.
"""

from __future__ import annotations

from fedbench.privacy import Privacy, Release, check_settings
from fedbench.privacy.accounting import epsilon, opacus_record


def local_dp(clip: float = 1.0, noise_multiplier: float = 1.0, delta: float = 1e-5, accountant: str = "rdp",
             seed: int = 0) -> Privacy:
    """Local DP-SGD on every client (Abadi et al. 2016) through opacus (module docstring)."""
    check_settings(clip, noise_multiplier, delta, accountant)
    clip, sigma, delta = float(clip), float(noise_multiplier), float(delta)

    def worst_client_epsilon(release: Release) -> float:
        """The largest sample-level epsilon over clients, each given as (its dataset size n_k, the DP-SGD steps it
        released so far) with sampling rate ``q = B / n_k`` (1 for full-batch steps)."""
        worst = 0.0
        for n, steps in release.released:
            q = 1.0 if release.batch_size is None else min(release.batch_size, n) / n
            worst = max(worst, epsilon(accountant, sigma, q, steps, delta))
        return worst

    def accounting(sampling: str) -> dict:
        return {**opacus_record(accountant, sampling), "batch_sampling": "poisson"}

    return Privacy("local_dp", clip, sigma, delta, worst_client_epsilon, accounting, client_dp=(clip, sigma),
                   needs=("server_aggregation",), accountant=accountant, seed=seed)
