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
# # 4. Reading strong and weak scaling runs
#
# **Strong scaling** keeps the work per round fixed and adds workers: speed-up $S(N) = T(1)/T(N)$, efficiency
# $S(N)/N$. **Weak scaling** keeps the work *per worker* fixed: ideally the round time stays flat.
# fedbench's `+study=strong_scaling` / `weak_scaling` run `backend=ddp` with 1, 2, ... forked ranks (one
# torch thread each) and the report turns the run folders into tables and plots. Here a small strong-scaling
# sweep (1 and 2 ranks, this machine has 2 cores) is run and read back with the report's own functions.

# %%
import logging
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from fedbench.config import compose
from fedbench.run import run

logging.getLogger("fedbench").setLevel(logging.WARNING)
root = Path("/tmp/fedbench-nb04")
for workers in (1, 2):
    run(compose(["+study=strong_scaling", f"backend.workers={workers}", "rounds=5"], root / f"workers_{workers}"))
sorted(p.name for p in root.iterdir())

# %% [markdown]
# Every run folder holds `metrics.csv` (one row per round, with the round's wall time `wall_s`, the
# clients' `compute_s`, the collective time `comm_s` and the barrier wait `idle_s`) and `summary.json`
# (the config and the hardware). The report reads only those:

# %%
from fedbench.report.analysis import scaling_table
from fedbench.report.runs import find_run_dirs, load_run
from fedbench.report.systems_report import collect

runs = [load_run(p) for p in find_run_dirs([root])]
keys, groups, metrics = collect(runs)
table = scaling_table(runs, metrics, "strong")
table[["workers", "round_s", "compute_per_rank_s", "comm_s", "idle_s", "speedup", "efficiency", "cores"]]

# %%
fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
a.plot(table["workers"], table["workers"], "--", color="grey", label="ideal")
a.plot(table["workers"], table["speedup"], "o-", label="measured")
a.set(xlabel="workers", ylabel="speed-up", title="Strong scaling")
a.legend()
parts = metrics[metrics["round"] > 1].groupby("world_size")[["compute_s", "comm_s", "idle_s"]].median()
parts.plot.bar(ax=b, stacked=True)
b.set(xlabel="workers", ylabel="seconds per round (median)", title="Where a round's time goes")
plt.tight_layout()
plt.show()

# %% [markdown]
# Speed-up below $N$ comes from what does not shrink with more workers: the all-gather of client results
# (`comm_s`), waiting for the slowest rank (`idle_s`) and the server step. `python -m fedbench.report <sweep>`
# writes the same table into the systems report's *Scaling* section, next to the communication analysis;
# the committed `reports/scaling/` holds a larger sweep.

# %%
from fedbench.report.systems_report import write_report

path = write_report(runs, [], root / "report", "notebook 04_scaling")
print("\n".join(path.read_text().split("## Scaling", 1)[1].split("## Communication", 1)[0].strip().splitlines()[:12]))
