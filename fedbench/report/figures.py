"""The report's figures (seaborn on matplotlib's file backend); each function writes one PNG.

Every figure takes the long-format table of per-round metrics (one row per run and round, with
``label`` = the run's group and ``seed``) and draws the mean over seeds with a band of one
standard deviation where a group has several seeds.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

if "inline" not in str(matplotlib.rcParams["backend"]):  # files only; a notebook keeps showing its figures
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

TIME_PARTS = {"compute_per_rank_s": "local compute (per rank)", "aggregate_s": "aggregation", "eval_s": "evaluation",
              "comm_s": "collective (measured)", "idle_s": "idle at barrier", "comm_sim_s": "network (simulated)"}


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _legend(ax: plt.Axes, title: str = "group") -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, [_wrap(t, 34) for t in labels], title=title, fontsize="small", title_fontsize="small",
                  loc="upper left", bbox_to_anchor=(1.01, 1))


def accuracy_vs_round(metrics: pd.DataFrame, path: Path) -> Path:
    """Test accuracy per round for every group (mean over seeds, band = 1 sd)."""
    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    data = metrics.dropna(subset=["test_accuracy"])
    sns.lineplot(data=data, x="round", y="test_accuracy", hue="label", errorbar="sd", marker="o", markersize=3, ax=ax)
    ax.set(xlabel="communication round (epoch for centralized baselines)", ylabel="test accuracy",
           title="Test accuracy per round (mean over seeds, band = 1 sd)")
    _legend(ax)
    return _save(fig, path)


def accuracy_vs_bytes(metrics: pd.DataFrame, path: Path, up_only: bool = False) -> Path:
    """Test accuracy against cumulative bytes communicated (up + down, or uploads only), in MB."""
    data = metrics.dropna(subset=["test_accuracy"]).copy()
    data["cum_mb"] = (data["cum_bytes_up"] + (0 if up_only else data["cum_bytes_down"])) / 1e6
    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    sns.lineplot(data=data, x="cum_mb", y="test_accuracy", hue="label", errorbar="sd", marker="o", markersize=3, ax=ax)
    if data["cum_mb"].gt(0).any() and data["cum_mb"].max() / max(data.loc[data.cum_mb > 0, "cum_mb"].min(), 1e-12) > 100:
        ax.set_xscale("log")
    ax.set(xlabel=f"cumulative communication, {'uploads' if up_only else 'up + down'} (MB)", ylabel="test accuracy",
           title="Accuracy vs bytes " + ("uploaded" if up_only else "communicated"))
    _legend(ax)
    return _save(fig, path)


def accuracy_vs_sim_time(metrics: pd.DataFrame, path: Path) -> Path:
    """Test accuracy against simulated wall-clock time (``cum_sim_round_s``: device speeds and network model)."""
    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    data = metrics.dropna(subset=["test_accuracy"])
    # seeds reach each round at different simulated times: one line per run, not a mean over x
    sns.lineplot(data=data, x="cum_sim_round_s", y="test_accuracy", hue="label", units="run", estimator=None,
                 marker="o", markersize=2, linewidth=0.9, ax=ax)
    ax.set(xlabel="simulated time (s)", ylabel="test accuracy", xscale="log",
           title="Accuracy vs simulated time (one line per run)")
    _legend(ax)
    return _save(fig, path)


def consensus_distance(metrics: pd.DataFrame, path: Path) -> Path:
    """Gossip runs' consensus distance mean_i ||x_i - x_bar||^2 per round and against the cumulative MB the nodes
    sent (log scale): methods that exchange more per round (a tracker) pay for their consensus in bytes."""
    data = metrics.dropna(subset=["consensus_distance"]).copy()
    data["cum_mb"] = data["cum_bytes_up"] / 1e6
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.0), sharey=True)
    for ax, x, xlabel in zip(axes, ("round", "cum_mb"), ("round", "cumulative MB sent by the nodes")):
        sns.lineplot(data=data, x=x, y="consensus_distance", hue="label", errorbar="sd", ax=ax, legend=ax is axes[1])
        ax.set(xlabel=xlabel, ylabel="consensus distance", yscale="log")
    axes[0].set_title("Consensus distance of the gossip nodes, per round and per MB")
    _legend(axes[1])
    return _save(fig, path)


def extra_metrics(metrics: pd.DataFrame, columns: list[str], path: Path) -> Path:
    """One panel per extra per-round column (see ``analysis.extra_columns``), every group a line."""
    fig, axes = plt.subplots(len(columns), 1, figsize=(9.5, 2.6 * len(columns) + 0.6), squeeze=False)
    for ax, col in zip(axes[:, 0], columns):
        sns.lineplot(data=metrics.dropna(subset=[col]), x="round", y=col, hue="label", errorbar="sd", ax=ax)
        ax.set(xlabel="round", ylabel=col)
        _legend(ax)
    axes[0, 0].set_title("Other per-round metrics (mean over seeds, band = 1 sd)")
    return _save(fig, path)


def label_distribution(partition: dict[str, Any], title: str, path: Path, max_clients: int = 50) -> Path:
    """Stacked bars: each client's training examples per label (the picture of non-IID-ness)."""
    counts = np.asarray(partition["label_counts"])[:max_clients]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    bottom = np.zeros(len(counts))
    colors = sns.color_palette("tab10" if counts.shape[1] <= 10 else "husl", counts.shape[1])
    for label in range(counts.shape[1]):
        ax.bar(np.arange(len(counts)), counts[:, label], bottom=bottom, color=colors[label], label=str(label), width=0.9)
        bottom += counts[:, label]
    shown = f" (first {len(counts)} of {len(partition['label_counts'])})" if len(partition["label_counts"]) > len(counts) else ""
    ax.set(xlabel=f"client{shown}", ylabel="training examples", title=title)
    ax.legend(title="label", ncol=2, fontsize="x-small", title_fontsize="small", loc="upper right", bbox_to_anchor=(1.16, 1))
    return _save(fig, path)


def _wrap(text: str, width: int = 38) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def time_breakdown(metrics: pd.DataFrame, path: Path) -> Path:
    """Mean seconds per round spent in each part, per group (stacked bars); local compute is the
    clients' summed compute divided by the ranks that ran them in parallel."""
    metrics = metrics.assign(compute_per_rank_s=metrics["compute_s"] / metrics["world_size"].fillna(1))
    parts = [c for c in TIME_PARTS if c in metrics and metrics[c].fillna(0).gt(0).any()]
    means = metrics.groupby("label", sort=False)[parts].mean().fillna(0)
    means.index = [_wrap(i) for i in means.index]
    fig, ax = plt.subplots(figsize=(9, 0.7 * len(means) + 2.4))
    left = np.zeros(len(means))
    colors = sns.color_palette("Set2", len(parts))
    for part, color in zip(parts, colors):
        ax.barh(means.index, means[part], left=left, label=TIME_PARTS[part], color=color)
        left += means[part].to_numpy()
    ax.set(xlabel="seconds per round (mean over rounds and seeds)", ylabel="", title="Where a round's time goes")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize="small")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, path)


def strong_scaling(table: pd.DataFrame, path: Path) -> Path:
    """Speed-up and efficiency vs workers, with the ideal (linear) line."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.6))
    w = table["workers"]
    ax1.plot(w, w, "--", color="grey", label="ideal")
    ax1.plot(w, table["speedup"], "o-", label="measured")
    ax1.set(xlabel="workers (processes)", ylabel="speed-up T(1) / T(N)", title="Strong scaling: speed-up")
    ax1.legend(fontsize="small")
    ax2.plot(w, [1.0] * len(w), "--", color="grey", label="ideal")
    ax2.plot(w, table["efficiency"], "o-", label="measured")
    ax2.set(xlabel="workers (processes)", ylabel="efficiency speed-up / N", ylim=(0, 1.1), title="Strong scaling: efficiency")
    ax2.legend(fontsize="small")
    for ax in (ax1, ax2):
        ax.set_xticks(list(w))
    return _save(fig, path)


def weak_scaling(table: pd.DataFrame, path: Path) -> Path:
    """Round time vs workers at fixed work per worker (flat = ideal)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    w = table["workers"]
    ax.plot(w, [table["round_s"].iloc[0]] * len(w), "--", color="grey", label="ideal (flat)")
    ax.plot(w, table["round_s"], "o-", label="measured")
    ax.set(xlabel="workers (processes)", ylabel="median round time (s)", title="Weak scaling: time per round",
           ylim=(0, None))
    ax.set_xticks(list(w))
    ax.legend(fontsize="small")
    return _save(fig, path)


def robustness_heatmap(table: pd.DataFrame, path: Path) -> Path:
    """Final accuracy per attack (rows) and aggregator (columns), annotated."""
    fig, ax = plt.subplots(figsize=(1.3 * len(table.columns) + 2.6, 0.55 * len(table) + 1.8))
    sns.heatmap(table.astype(float), annot=True, fmt=".2f", vmin=0, vmax=1, cmap="RdYlGn", cbar_kws={"label": "final accuracy"},
                ax=ax)
    ax.set(xlabel="aggregator", ylabel="attack", title="Final test accuracy under attack")
    ax.tick_params(axis="x", labelrotation=25)
    return _save(fig, path)


def accuracy_vs_epsilon(points: pd.DataFrame, path: Path) -> Path:
    """Final accuracy against the final epsilon, one marker per run; runs without privacy (or without noise,
    epsilon = inf) are drawn as horizontal reference lines."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    finite = points[points["epsilon"].notna() & np.isfinite(points["epsilon"].astype(float).fillna(np.inf))]
    if len(finite):
        sns.scatterplot(data=finite, x="epsilon", y="accuracy", hue="mechanism", style="mechanism", s=60, ax=ax)
        ax.set_xscale("log")
    for i, (label, rows) in enumerate(points.drop(finite.index).groupby("label", sort=False)):
        ax.axhline(rows["accuracy"].mean(), linestyle="--", color=sns.color_palette("Greys", 4)[2 + i % 2],
                   label=_wrap(f"{label} (epsilon = inf)", 40))
    ax.set(xlabel="epsilon at delta (log)", ylabel="final test accuracy", title="Privacy-utility trade-off")
    _legend(ax, "mechanism")
    return _save(fig, path)


def bubble_vs_microbatches(points: pd.DataFrame, path: Path) -> Path:
    """Measured pipeline bubble fraction against microbatches, one line per (schedule, stages, replicas),
    with the theoretical (p - 1) / (m + p - 1) of each stage count dashed."""
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.lineplot(data=points, x="microbatches", y="bubble", hue="setting", style="setting", markers=True, dashes=False,
                 errorbar=("pi", 100), ax=ax)
    for stages in sorted(points["stages"].unique()):
        m = np.array(sorted(points["microbatches"].unique()), dtype=float)
        ax.plot(m, (stages - 1) / (m + stages - 1), "--", color="grey", label=f"theory, p = {stages}")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="microbatches m (log2)", ylabel="bubble fraction (idle share of a step)", ylim=(0, 1),
           title="Pipeline bubble: measured vs (p - 1) / (m + p - 1)")
    _legend(ax, "schedule, stages x replicas")
    return _save(fig, path)
