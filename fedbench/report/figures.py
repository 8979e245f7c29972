"""The report's figures; each function writes one figure (PNG, PDF and SVG: :mod:`fedbench.report.figure_style`).

Every figure of per-round metrics takes the long-format table (one row per run and round, with the run's group as
``hue``/``style`` and ``seed``) and draws the mean over seeds, with a band of one standard deviation where a group has
several seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from fedbench.report import figure_style as S
from fedbench.report.figure_style import wrap as _wrap

TIME_PARTS = {"compute_per_rank_s": "local compute (per rank)", "aggregate_s": "aggregation", "eval_s": "evaluation",
              "comm_s": "collective (measured)", "idle_s": "idle at barrier", "comm_sim_s": "network (simulated)"}


def accuracy_vs_round(metrics: pd.DataFrame, path: Path) -> Path:
    """Test accuracy per round for every group (mean over seeds, band = 1 sd where a group has several)."""
    fig, ax = S.figure(7.5, 3.6)
    data = metrics.dropna(subset=["test_accuracy"])
    S.lines(data, "round", "test_accuracy", ax, marker="o", markersize=3)
    ax.set(xlabel="communication round (epoch for centralized baselines)", ylabel="test accuracy",
           title=f"Test accuracy per round ({S.band_note(data)})")
    S.integer_rounds(ax)
    S.legend(ax)
    return S.save(fig, path)


def accuracy_vs_bytes(metrics: pd.DataFrame, path: Path, up_only: bool = False) -> Path:
    """Test accuracy against cumulative bytes communicated (up + down, or uploads only), in MB."""
    data = metrics.dropna(subset=["test_accuracy"]).copy()
    data["cum_mb"] = (data["cum_bytes_up"] + (0 if up_only else data["cum_bytes_down"])) / 1e6
    fig, ax = S.figure(7.5, 3.6)
    S.lines(data, "cum_mb", "test_accuracy", ax, marker="o", markersize=3)
    if data["cum_mb"].gt(0).any() and data["cum_mb"].max() / max(data.loc[data.cum_mb > 0, "cum_mb"].min(), 1e-12) > 100:
        ax.set_xscale("log")
    ax.set(xlabel=f"cumulative communication, {'uploads' if up_only else 'up + down'} (MB)", ylabel="test accuracy",
           title="Accuracy vs bytes " + ("uploaded" if up_only else "communicated") + f" ({S.band_note(data)})")
    S.legend(ax)
    return S.save(fig, path)


def accuracy_vs_time(metrics: pd.DataFrame, path: Path, column: str = "cum_wall_s") -> Path:
    """Test accuracy against time, one line per run (seeds reach a round at different times, so no mean over x):
    measured wall-clock time (``cum_wall_s``) or simulated time (``cum_sim_round_s``: device speeds, network model)."""
    simulated = column == "cum_sim_round_s"
    data = metrics.dropna(subset=["test_accuracy", column])
    fig, ax = S.figure(7.5, 3.6)
    S.lines(data, column, "test_accuracy", ax, per_run=True, marker="o", markersize=2, linewidth=0.9)
    if data[column].gt(0).any() and data[column].max() / max(data.loc[data[column] > 0, column].min(), 1e-12) > 100:
        ax.set_xscale("log")
    kind = "simulated time (s; device speeds and network model)" if simulated else "wall-clock time (s, measured)"
    ax.set(xlabel=kind, ylabel="test accuracy",
           title=f"Accuracy vs {'simulated' if simulated else 'wall-clock'} time (one line per run)")
    S.legend(ax)
    return S.save(fig, path)


def accuracy_vs_sim_time(metrics: pd.DataFrame, path: Path) -> Path:
    """Test accuracy against simulated time (see :func:`accuracy_vs_time`)."""
    return accuracy_vs_time(metrics, path, "cum_sim_round_s")


def consensus_distance(metrics: pd.DataFrame, path: Path) -> Path:
    """Gossip runs' consensus distance mean_i ||x_i - x_bar||^2 per round and against the cumulative MB the nodes
    sent (log scale): methods that exchange more per round (a tracker) pay for their consensus in bytes."""
    data = metrics.dropna(subset=["consensus_distance"]).copy()
    data["cum_mb"] = data["cum_bytes_up"] / 1e6
    fig, axes = S.figure(11, 3.6, 1, 2, sharey=True)
    for ax, x, xlabel in zip(axes, ("round", "cum_mb"), ("round", "cumulative MB sent by the nodes")):
        S.lines(data, x, "consensus_distance", ax)
        ax.set(xlabel=xlabel, ylabel="consensus distance", yscale="log")
    S.integer_rounds(axes[0])
    axes[1].get_legend().remove()
    axes[0].set_title("Consensus distance of the gossip nodes, per round and per MB")
    S.legend(axes[0])
    return S.save(fig, path)


def extra_metrics(metrics: pd.DataFrame, columns: list[str], path: Path) -> Path:
    """One panel per extra per-round column (see ``analysis.extra_columns``), every group a line; one legend."""
    fig, axes = S.figure(7.5, 2.3 * len(columns) + 0.6, len(columns), 1, squeeze=False, sharex=True)
    for i, (ax, col) in enumerate(zip(axes[:, 0], columns)):
        S.lines(metrics.dropna(subset=[col]), "round", col, ax)
        ax.set(xlabel="round", ylabel=col)
        S.integer_rounds(ax)
        if i and ax.get_legend() is not None:
            ax.get_legend().remove()
    S.legend(axes[0, 0])
    axes[0, 0].set_title(f"Other per-round metrics ({S.band_note(metrics)})")
    return S.save(fig, path)


def label_distribution(partition: dict[str, Any], title: str, path: Path, max_clients: int = 50) -> Path:
    """Stacked bars: each client's training examples per label (the picture of non-IID-ness)."""
    counts = np.asarray(partition["label_counts"])[:max_clients]
    fig, ax = S.figure(7, 3.8)
    bottom = np.zeros(len(counts))
    colors = sns.color_palette("tab10" if counts.shape[1] <= 10 else "husl", counts.shape[1])
    for label in range(counts.shape[1]):
        ax.bar(np.arange(len(counts)), counts[:, label], bottom=bottom, color=colors[label], label=str(label), width=0.9)
        bottom += counts[:, label]
    shown = f" (first {len(counts)} of {len(partition['label_counts'])})" if len(partition["label_counts"]) > len(counts) else ""
    ax.set(xlabel=f"client{shown}", ylabel="training examples", title=title)
    ax.legend(title="label", ncol=2, fontsize="x-small", title_fontsize="small")
    S.legend(ax, "label", width=12)
    return S.save(fig, path)


def time_breakdown(metrics: pd.DataFrame, path: Path) -> Path:
    """Mean seconds per round spent in each part, per group (stacked bars); local compute is the
    clients' summed compute divided by the ranks that ran them in parallel."""
    metrics = metrics.assign(compute_per_rank_s=metrics["compute_s"] / metrics["world_size"].fillna(1))
    parts = [c for c in TIME_PARTS if c in metrics and metrics[c].fillna(0).gt(0).any()]
    means = metrics.groupby("label", sort=False)[parts].mean().fillna(0)
    means.index = [_wrap(i) for i in means.index]
    fig, ax = S.figure(8, 0.6 * len(means) + 2.0)
    left = np.zeros(len(means))
    colors = sns.color_palette("Set2", len(parts))
    for part, color in zip(parts, colors):
        ax.barh(means.index, means[part], left=left, label=TIME_PARTS[part], color=color)
        left += means[part].to_numpy()
    ax.set(xlabel="seconds per round (mean over rounds and seeds)", ylabel="", title="Where a round's time goes")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize="small")
    ax.legend()
    S.legend(ax, "part")
    return S.save(fig, path)


def strong_scaling(table: pd.DataFrame, path: Path) -> Path:
    """Speed-up and efficiency vs workers, with the ideal (linear) line."""
    fig, (ax1, ax2) = S.figure(8, 3.6, 1, 2)
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
    return S.save(fig, path)


def weak_scaling(table: pd.DataFrame, path: Path) -> Path:
    """Round time vs workers at fixed work per worker (flat = ideal)."""
    fig, ax = S.figure(5.5, 3.6)
    w = table["workers"]
    ax.plot(w, [table["round_s"].iloc[0]] * len(w), "--", color="grey", label="ideal (flat)")
    ax.plot(w, table["round_s"], "o-", label="measured")
    ax.set(xlabel="workers (processes)", ylabel="median round time (s)", title="Weak scaling: time per round",
           ylim=(0, None))
    ax.set_xticks(list(w))
    ax.legend(fontsize="small")
    return S.save(fig, path)


def robustness_heatmap(table: pd.DataFrame, path: Path) -> Path:
    """Final accuracy per attack (rows) and aggregator (columns), annotated."""
    fig, ax = S.figure(1.3 * len(table.columns) + 2.6, 0.55 * len(table) + 1.8)
    sns.heatmap(table.astype(float), annot=True, fmt=".2f", vmin=0, vmax=1, cmap="RdYlGn", cbar_kws={"label": "final accuracy"},
                ax=ax)
    ax.set(xlabel="aggregator", ylabel="attack", title="Final test accuracy under attack")
    ax.tick_params(axis="x", labelrotation=25)
    return S.save(fig, path)


def accuracy_vs_epsilon(points: pd.DataFrame, path: Path) -> Path:
    """Final accuracy against the final epsilon, one marker per run; runs without privacy (or without noise,
    epsilon = inf) are drawn as horizontal reference lines."""
    fig, ax = S.figure(8, 4.2)
    finite = points[points["epsilon"].notna() & np.isfinite(points["epsilon"].astype(float).fillna(np.inf))]
    if len(finite):
        sns.scatterplot(data=finite, x="epsilon", y="accuracy", hue="mechanism", style="mechanism", s=60, ax=ax)
        ax.set_xscale("log")
    for i, (label, rows) in enumerate(points.drop(finite.index).groupby("label", sort=False)):
        ax.axhline(rows["accuracy"].mean(), linestyle="--", color=sns.color_palette("Greys", 4)[2 + i % 2],
                   label=_wrap(f"{label} (epsilon = inf)", 40))
    ax.set(xlabel="epsilon at delta (log)", ylabel="final test accuracy", title="Privacy-utility trade-off")
    S.legend(ax, "mechanism")
    return S.save(fig, path)


def bubble_vs_microbatches(points: pd.DataFrame, path: Path) -> Path:
    """Measured pipeline bubble fraction against microbatches, one line per (schedule, stages, replicas),
    with the theoretical (p - 1) / (m + p - 1) of each stage count dashed."""
    fig, ax = S.figure(7, 4)
    sns.lineplot(data=points, x="microbatches", y="bubble", hue="setting", style="setting", markers=True, dashes=False,
                 errorbar=("pi", 100), ax=ax)
    for stages in sorted(points["stages"].unique()):
        m = np.array(sorted(points["microbatches"].unique()), dtype=float)
        ax.plot(m, (stages - 1) / (m + stages - 1), "--", color="grey", label=f"theory, p = {stages}")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="microbatches m (log2)", ylabel="bubble fraction (idle share of a step)", ylim=(0, 1),
           title="Pipeline bubble: measured vs (p - 1) / (m + p - 1)")
    S.legend(ax, "schedule, stages x replicas")
    return S.save(fig, path)


def accuracy_gap(gaps: pd.DataFrame, path: Path) -> Path:
    """|test accuracy - the reference's| per round, one line per group (``gaps``: rounds x groups)."""
    fig, ax = S.figure(7.5, 3.4)
    long = gaps.reset_index(names="round").melt(id_vars="round", var_name="label", value_name="gap").dropna()
    sns.lineplot(data=long, x="round", y="gap", hue="label", style="label", marker="o", markersize=4, ax=ax)
    ax.set(xlabel="communication round", ylabel="|accuracy - reference|",
           title="Accuracy gap to the in-process run per round")
    S.integer_rounds(ax)
    S.legend(ax, "group")
    return S.save(fig, path)
