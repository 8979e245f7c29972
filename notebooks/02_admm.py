# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Consensus ADMM and FedADMM
#
# **Consensus problem.** $N$ clients hold $f_k$; we want $\min_x \sum_k f_k(x)$. Give each client its own copy
# $x_k$ and require agreement with a global $z$:
#
# $$\min_{x_1..x_N, z} \sum_k f_k(x_k) \quad \text{s.t.}\quad x_k = z .$$
#
# The augmented Lagrangian with duals $\lambda_k$ and penalty $\rho$ is
# $L_\rho = \sum_k f_k(x_k) + \lambda_k^\top (x_k - z) + \frac{\rho}{2}\|x_k - z\|^2$, and ADMM
# (Boyd et al. 2011, §7.1) alternates
#
# $$x_k \leftarrow \arg\min_x f_k(x) + \lambda_k^\top(x - z) + \tfrac{\rho}{2}\|x - z\|^2,\qquad
#   z \leftarrow \frac{1}{N}\sum_k \big(x_k + \lambda_k/\rho\big),\qquad
#   \lambda_k \leftarrow \lambda_k + \rho (x_k - z).$$
#
# First a self-contained check on least squares, $f_k(x) = \frac12\|A_k x - b_k\|^2$, where the $x$-update is a
# linear solve and the answer is known (the pooled least-squares solution).

# %%
import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
N, d = 8, 5
A = [rng.normal(size=(30, d)) for _ in range(N)]
b = [a @ rng.normal(size=d) + rng.normal(scale=0.5, size=30) + k for k, a in enumerate(A)]  # heterogeneous clients
x_star = np.linalg.lstsq(np.vstack(A), np.concatenate(b), rcond=None)[0]


def consensus_admm(rho: float, iters: int = 60) -> list[float]:
    x, lam, z = np.zeros((N, d)), np.zeros((N, d)), np.zeros(d)
    errors = []
    for _ in range(iters):
        for k in range(N):
            x[k] = np.linalg.solve(A[k].T @ A[k] + rho * np.eye(d), A[k].T @ b[k] - lam[k] + rho * z)
        z = (x + lam / rho).mean(axis=0)
        lam += rho * (x - z)
        errors.append(float(np.linalg.norm(z - x_star)))
    return errors


fig, ax = plt.subplots(figsize=(7, 4))
for rho in (0.3, 3.0, 30.0, 300.0):
    ax.semilogy(consensus_admm(rho), label=f"rho = {rho}")
ax.set(xlabel="iteration", ylabel="||z - x*||", title="Consensus ADMM on least squares converges to the pooled solution")
ax.legend()
plt.show()
print("final error at rho=3:", consensus_admm(3.0)[-1])

# %% [markdown]
# $\rho$ trades the two residuals: small $\rho$ lets the local solutions wander (slow consensus), large $\rho$
# pins them to $z$ (slow progress on the objective). In between, convergence is fast.
#
# ## FedADMM
#
# FedADMM (Wang et al. 2022) runs this with **partial participation** and **inexact** $x$-updates: a sampled
# client runs local SGD on $f_k(x) + \lambda_k^\top(x - z) + \frac{\rho}{2}\|x - z\|^2$, updates its dual, and
# uploads $x_k + \lambda_k/\rho$; the server averages. fedbench's `algorithm=fedadmm` keeps each client's
# $\lambda_k$ in its client state. A sweep of $\rho$ on non-IID digits (2 label shards per client):

# %%
from fedbench.config import compose
from fedbench.run import run

logging.getLogger("fedbench").setLevel(logging.WARNING)
runs = {}
for i, rho in enumerate((0.001, 0.01, 0.1, 1.0)):
    cfg = compose(["algorithm=fedadmm", f"algorithm.rho={rho}", "partitioner=shards", "num_clients=20",
                   "client_fraction=0.25", "local_epochs=2", "rounds=25", "lr=0.05", "checkpoint_every=0"],
                  f"/tmp/fedbench-nb02/{i}")
    runs[rho] = run(cfg)

fig, ax = plt.subplots(figsize=(7, 4))
for rho, res in runs.items():
    rows = pd.DataFrame(res.rows)
    ax.plot(rows["round"], rows["test_accuracy"], label=f"rho = {rho}")
ax.set(xlabel="round", ylabel="test accuracy", title="FedADMM on non-IID digits: the rho sweep")
ax.legend()
plt.show()
pd.DataFrame([{"rho": rho, "final acc": r.summary["final_accuracy"], "best acc": r.summary["best_accuracy"]}
              for rho, r in runs.items()])
