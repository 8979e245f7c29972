"""Optional sections of the systems report: topologies, compression, robustness, privacy and pipeline parallelism
(only when the runs have them; the backends section is :mod:`fedbench.report.backends`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from fedbench.report import analysis as A
from fedbench.report import figures as F
from fedbench.report.analysis import mean_sd
from fedbench.report.runs import RunRecord

TOPOLOGY_HEADER = ["group", "topology", "spectral gap", "rounds to target", "simulated s to target",
                   "simulated s in all", "final acc", "MB in all"]


def topology_rows(groups: dict[str, list[RunRecord]], metrics: pd.DataFrame) -> list[list[Any]]:
    """Per group: its topology, the gossip graph's spectral gap, rounds and simulated seconds to the
    target accuracy (``cum_sim_round_s`` at the first round reaching it), final accuracy and traffic."""
    rows = []
    for label, runs in groups.items():
        s = runs[0].summary
        frame = metrics[metrics["label"] == label]
        target = s.get("target_accuracy")
        to_target = []
        for _, run in frame.groupby("run"):
            hit = run[run["test_accuracy"] >= target] if target is not None else run.iloc[0:0]
            to_target.append(float(hit["cum_sim_round_s"].iloc[0]) if len(hit) else None)
        reached = mean_sd(to_target)[0] if all(v is not None for v in to_target) else None
        rtt = [r.summary["rounds_to_target"] for r in runs]
        rows.append([label, s.get("topology", "star"), s.get("spectral_gap"),
                     mean_sd(rtt)[0] if all(v is not None for v in rtt) else "not reached",
                     reached if reached is not None else "not reached",
                     mean_sd(frame.groupby("run")["cum_sim_round_s"].max().tolist())[0],
                     mean_sd([r.summary["final_accuracy"] for r in runs])[0],
                     mean_sd([(r.summary["total_bytes_up"] + r.summary["total_bytes_down"]) / 1e6 for r in runs])[0]])
    return rows


COMPRESSION_HEADER = ["group", "compression ratio", "MB up to target", "MB up+down to target", "MB up in all",
                      "rounds to target", "final acc"]


def _mb_at_target(frame: pd.DataFrame, target: float | None, column: str) -> float | None:
    """Cumulative MB of ``column`` at the run's first round reaching ``target`` (None if never)."""
    hit = frame[frame["test_accuracy"] >= target] if target is not None else frame.iloc[0:0]
    return float(hit[column].iloc[0]) / 1e6 if len(hit) else None


def compression_rows(groups: dict[str, list[RunRecord]], metrics: pd.DataFrame) -> list[list[Any]]:
    """Per group: its compression ratio (fp32 / wire bytes), the uplink and total megabytes spent to reach
    the target accuracy (mean over seeds; "not reached" if any seed never did), totals and accuracy."""
    rows = []
    for label, runs in groups.items():
        frame = metrics[metrics["label"] == label].copy()
        frame["cum_all"] = frame["cum_bytes_up"] + frame["cum_bytes_down"]
        target = runs[0].summary.get("target_accuracy")
        ups = [_mb_at_target(run, target, "cum_bytes_up") for _, run in frame.groupby("run")]
        alls = [_mb_at_target(run, target, "cum_all") for _, run in frame.groupby("run")]
        reached = all(v is not None for v in ups)
        rtt = [r.summary["rounds_to_target"] for r in runs]
        rows.append([label, mean_sd([r.summary.get("compression_ratio") or 1.0 for r in runs])[0],
                     mean_sd(ups)[0] if reached else "not reached", mean_sd(alls)[0] if reached else "not reached",
                     mean_sd([r.summary["total_bytes_up"] / 1e6 for r in runs])[0],
                     mean_sd(rtt)[0] if all(v is not None for v in rtt) else "not reached",
                     mean_sd([r.summary["final_accuracy"] for r in runs])[0]])
    return rows


def topologies(runs: Sequence[RunRecord], groups: dict[str, list[RunRecord]], metrics: pd.DataFrame, out: Path,
               figs: dict[str, Path], img: Callable[[str, str], str]) -> list[str]:
    """Topologies compared: spectral gaps, time to target, accuracy vs simulated time, consensus distance."""
    if {r.summary.get("topology", "star") for r in runs} == {"star"}:
        return []
    figs["sim_time"] = F.accuracy_vs_sim_time(metrics, out / "accuracy_vs_sim_time.png")
    text = ["## Topologies", "", A.table(out, "topologies", TOPOLOGY_HEADER, topology_rows(groups, metrics)), "",
            "Spectral gap: 1 - |lambda_2(W)| of a gossip graph's mixing matrix; simulated time: the runs' "
            "`cum_sim_round_s` (device speeds, compute model and network model; for async the event clock).", "",
            img("sim_time", "accuracy vs simulated time"), ""]
    if "consensus_distance" in metrics and metrics["consensus_distance"].notna().any():
        figs["consensus"] = F.consensus_distance(metrics, out / "consensus_distance.png")
        text += [img("consensus", "consensus distance"), ""]
    return text


def compression(runs: Sequence[RunRecord], groups: dict[str, list[RunRecord]], metrics: pd.DataFrame, out: Path,
                figs: dict[str, Path], img: Callable[[str, str], str]) -> list[str]:
    """Compressors compared: ratio, megabytes to the target accuracy, accuracy vs bytes."""
    if not any(r.summary.get("compression_ratio") for r in runs):
        return []
    figs["bytes_up"] = F.accuracy_vs_bytes(metrics, out / "accuracy_vs_bytes_up.png", up_only=True)
    return ["## Compression", "", A.table(out, "compression", COMPRESSION_HEADER, compression_rows(groups, metrics)), "",
            "Compression ratio: the compressed direction's traffic (uploads, and broadcasts when compressed) as "
            "fp32 over its wire bytes (exact encoding sizes; uncompressed runs count as 1). MB to target: "
            "cumulative bytes at the first round reaching the target accuracy (mean over seeds).", "",
            img("bytes_up", "accuracy vs bytes uploaded"), ""]


def _attack(run: RunRecord) -> str:
    s = run.summary
    return s["attack"] if s.get("attack") and s.get("attack_fraction", 0) > 0 else "none"


ATTACK_ORDER = ("none", "sign_flip", "sign_flip_x4", "gaussian", "scaling", "label_flip", "alie", "ipm")
AGGREGATOR_ORDER = ("mean", "median", "trimmed_mean", "krum", "multi_krum", "geometric_median", "centered_clipping")


def _ordered(values: Sequence[str], order: Sequence[str]) -> list[str]:
    """Known names in the order of the docs' tables (docs/explanation/threat-model.md), then the others by name."""
    return sorted(set(values), key=lambda v: (order.index(v) if v in order else len(order), v))


def robustness_table(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """Final accuracy (mean over seeds) per attack (rows) and aggregator (columns)."""
    frame = pd.DataFrame([{"attack": _attack(r), "aggregator": r.summary.get("aggregator", "mean"),
                           "acc": r.summary["final_accuracy"]} for r in runs])
    pivot = frame.pivot_table(index="attack", columns="aggregator", values="acc", aggfunc="mean")
    return pivot.reindex(index=_ordered(frame["attack"], ATTACK_ORDER),
                         columns=_ordered(frame["aggregator"], AGGREGATOR_ORDER))


def robustness(runs: Sequence[RunRecord], groups: dict[str, list[RunRecord]], metrics: pd.DataFrame, out: Path,
               figs: dict[str, Path], img: Callable[[str, str], str]) -> list[str]:
    """Attacks against aggregators: a table and heatmap of final accuracy."""
    if not any(_attack(r) != "none" or r.summary.get("aggregator", "mean") != "mean" for r in runs):
        return []
    pivot = robustness_table(runs)
    figs["robustness"] = F.robustness_heatmap(pivot, out / "robustness.png")
    rows = [[attack, *[row[c] for c in pivot.columns]] for attack, row in pivot.iterrows()]
    fractions = sorted({r.summary.get("attack_fraction") for r in runs if r.summary.get("attack_fraction")})
    return ["## Robustness", "", A.table(out, "robustness", ["attack \\ aggregator", *pivot.columns], rows), "",
            f"Final test accuracy (mean over seeds) per attack and aggregator; Byzantine share of the clients: "
            f"{', '.join(f'{f:g}' for f in fractions) or '-'} (a fixed seeded set per run; "
            "the `byzantine` column of `metrics.csv` counts how many reported each round).", "",
            img("robustness", "final accuracy per attack and aggregator"), ""]


PRIVACY_HEADER = ["group", "mechanism", "noise multiplier", "clip", "epsilon (final)", "delta", "sampling",
                  "adjacency", "accountant", "final acc"]


def privacy(runs: Sequence[RunRecord], groups: dict[str, list[RunRecord]], metrics: pd.DataFrame, out: Path,
            figs: dict[str, Path], img: Callable[[str, str], str]) -> list[str]:
    """Privacy against accuracy: final epsilon and accuracy per group, and the trade-off figure."""
    if not any(r.summary.get("privacy") for r in runs):
        return []
    rows, points = [], []
    for label, members in groups.items():
        s = members[0].summary
        eps = mean_sd([r.summary.get("epsilon") for r in members])[0] if s.get("privacy") else None
        acc = mean_sd([r.summary["final_accuracy"] for r in members])[0]
        accountant = f"{s.get('accountant')} ({s.get('accountant_library')})" if s.get("accountant_library") else \
            s.get("accountant")
        rows.append([label, s.get("privacy", "none"), s.get("noise_multiplier"), s.get("clip"),
                     "inf" if eps == float("inf") else eps, f"{s['delta']:g}" if s.get("delta") else None,
                     s.get("batch_sampling", s.get("client_sampling")) if s.get("privacy") else None,
                     s.get("adjacency"), accountant, acc])
        points += [{"label": label, "mechanism": s.get("privacy", "none"), "epsilon": r.summary.get("epsilon"),
                    "accuracy": r.summary["final_accuracy"]} for r in members]
    mechanisms = ("none", "dp_fedavg", "local_dp")
    rows.sort(key=lambda row: (mechanisms.index(row[1]) if row[1] in mechanisms else 3, row[2] or 0))
    figs["privacy"] = F.accuracy_vs_epsilon(pd.DataFrame(points), out / "accuracy_vs_epsilon.png")
    return ["## Privacy", "", A.table(out, "privacy", PRIVACY_HEADER, rows), "",
            "epsilon: after the last round at the given delta, computed by the accountant named (library and version "
            "from each run's `summary.json`) for the sampling that ran (clients for dp_fedavg, local batches for "
            "local_dp) and the neighbouring relation shown: client-level for dp_fedavg, the largest sample-level "
            "epsilon of any client for local_dp; inf = no noise.", "", img("privacy", "accuracy vs epsilon"), ""]


PIPELINE_HEADER = ["group", "schedule", "stages x replicas", "microbatches", "bubble measured", "bubble theory",
                   "MB between stages / epoch", "MB all-reduced / epoch", "s / epoch", "final acc"]


def pipeline(runs: Sequence[RunRecord], groups: dict[str, list[RunRecord]], metrics: pd.DataFrame, out: Path,
             figs: dict[str, Path], img: Callable[[str, str], str]) -> list[str]:
    """Pipeline / hybrid runs: measured bubble against the theory, bytes between stages and all-reduced."""
    if not any(r.summary.get("pipeline") for r in runs):
        return []
    rows, points = [], []
    for label, members in groups.items():
        pipe = members[0].summary.get("pipeline")
        if not pipe:
            continue
        frame = metrics[metrics["label"] == label]
        rows.append([label, pipe["schedule"], f"{pipe['stages']} x {pipe['replicas']}", pipe["microbatches"],
                     mean_sd([r.summary["pipeline"]["bubble_measured"] for r in members])[0], pipe["bubble_theory"],
                     frame["stage_bytes"].mean() / 1e6, frame["allreduce_bytes"].mean() / 1e6, frame["wall_s"].mean(),
                     mean_sd([r.summary["final_accuracy"] for r in members])[0]])
        points += [{"setting": f"{pipe['schedule']}, {pipe['stages']} x {pipe['replicas']}", "stages": pipe["stages"],
                    "microbatches": pipe["microbatches"], "bubble": b} for b in frame["bubble"].dropna()]
    rows.sort(key=lambda row: (row[1], row[2], row[3]))
    if len({p["microbatches"] for p in points}) > 1:
        figs["bubble"] = F.bubble_vs_microbatches(pd.DataFrame(points), out / "bubble_vs_microbatches.png")
    return ["## Pipeline parallelism", "", A.table(out, "pipeline", PIPELINE_HEADER, rows), "",
            "bubble measured: the share of a training step a stage spends not computing (1 - compute / step time, "
            "mean over stages and epochs, from `stage_times.csv`); theory: (p - 1) / (m + p - 1) for p stages and m "
            "microbatches with equal stage times (Huang et al. 2019). Bytes: activations forward and their gradients "
            "backward between stages, and the ring all-reduce of each stage's gradients across replicas.", "",
            img("bubble", "bubble fraction vs microbatches"), ""]
