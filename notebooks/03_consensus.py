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
# # 3. Consensus: mixing matrices and the spectral gap
#
# In decentralized training every node averages with its neighbours, $X_{t+1} = W X_t$, with $W$ symmetric and
# doubly stochastic. The disagreement $\|X_t - \bar X\|$ shrinks at least like $|\lambda_2(W)|^t = (1 - \text{gap})^t$
# (Boyd et al. 2006), so the spectral gap $1 - |\lambda_2(W)|$ of the graph tells how fast gossip reaches
# consensus. fedbench builds the graphs and their Metropolis-Hastings weights in `fedbench.topology.graphs`.

# %%
import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fedbench.topology.graphs import adjacency, mixing, spectral_gap

n = 16
graphs = ["ring", "torus", "exponential", "complete"]
W = {g: mixing(adjacency(g, n)) for g in graphs}
pd.DataFrame([{"graph": g, "degree": int((adjacency(g, n) > 0).sum(1).max()), "spectral gap": spectral_gap(W[g])}
              for g in graphs])

# %%
rng = np.random.default_rng(0)
x0 = rng.normal(size=(n, 10))
fig, ax = plt.subplots(figsize=(7, 4))
for i, g in enumerate(graphs):
    x, err = x0.copy(), []
    for _ in range(40):
        x = W[g] @ x
        err.append(np.linalg.norm(x - x.mean(0)) / np.linalg.norm(x0 - x0.mean(0)))
    ax.semilogy(err, color=f"C{i}", label=f"{g} (gap {spectral_gap(W[g]):.3f})")
    ax.semilogy((1 - spectral_gap(W[g])) ** np.arange(1, 41), "--", color=f"C{i}", alpha=0.5)
ax.set(xlabel="gossip steps t", ylabel="relative disagreement", ylim=(1e-12, 2),
       title="Measured disagreement (solid) under the (1 - gap)^t bound (dashed)")
ax.legend()
plt.show()

# %% [markdown]
# The measured curves stay under their bounds and order the graphs by spectral gap: the ring (gap
# $\approx 2\pi^2/n^2$) is slowest, the complete graph reaches consensus in one step. The exponential graph
# (Ying et al. 2021) gets most of the complete graph's speed with $\log_2 n$ neighbours.
#
# ## Gossip training
#
# fedbench's `topology=gossip` trains D-PSGD (local SGD, then one mixing step per round). The same graphs
# on 16 IID digits clients; the average model's accuracy and the nodes' disagreement per round:

# %%
from fedbench.config import compose
from fedbench.run import run

logging.getLogger("fedbench").setLevel(logging.WARNING)
rows = []
for i, g in enumerate(graphs):
    res = run(compose(["topology=gossip", f"topology.graph={g}", "num_clients=16", "client_fraction=1",
                       "local_epochs=1", "rounds=15", "lr=0.05", "checkpoint_every=0"], f"/tmp/fedbench-nb03/{i}"))
    frame = pd.DataFrame(res.rows)
    frame["graph"] = g
    rows.append(frame)
curves = pd.concat(rows)
fig, ax = plt.subplots(figsize=(7, 4))
for g, frame in curves.groupby("graph", sort=False):
    ax.plot(frame["round"], frame["test_accuracy"], label=g)
ax.set(xlabel="round", ylabel="test accuracy (average model)", title="D-PSGD on digits over four graphs")
ax.legend()
plt.show()
consensus_cols = [c for c in curves.columns if "consensus" in c or "disagree" in c]
curves.groupby("graph", sort=False)[["test_accuracy", *consensus_cols]].last()
