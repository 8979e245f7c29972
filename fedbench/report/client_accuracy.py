"""The report's per-client accuracy section: how the global model's accuracy is spread over the clients, and how
each client's personal model does.

Reads the ``client_accuracy_*`` and ``personal_accuracy_*`` columns :mod:`fedbench.client_eval` writes
(``eval.per_client``); runs without them get no section. The table (also ``client_accuracy_table.csv``) gives the
last evaluated round; one panel per group: the band between the 10th and 90th percentiles of the clients'
accuracies, the median, the unweighted mean and the worst client, and the personal models' mean where there is one,
per evaluated round (each a mean over seeds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from fedbench.report import analysis as A
from fedbench.report import figure_style as S
from fedbench.report.runs import RunRecord

PARTS = ("client_accuracy_p10", "client_accuracy_p50", "client_accuracy_p90", "client_accuracy_mean",
         "client_accuracy_min")
HEADER = ["group", "clients evaluated", "pooled test acc", "client mean", "client p10", "client median", "worst client",
          "client variance", "personal mean", "personal p10", "personal worst"]
FINAL = ("client_accuracy_mean", "client_accuracy_p10", "client_accuracy_p50", "client_accuracy_min", "client_accuracy_var",
         "personal_accuracy_mean", "personal_accuracy_p10", "personal_accuracy_min")
MAX_PANELS = 6


def distribution_over_rounds(metrics: pd.DataFrame, path: Path) -> Path:
    """One panel per group (at most :data:`MAX_PANELS`): p10-p90 band, median, mean and minimum per round."""
    data = metrics.dropna(subset=["client_accuracy_mean"])
    labels = list(dict.fromkeys(data["label"]))[:MAX_PANELS]
    fig, axes = S.figure(9.5, 2.7 * len(labels) + 0.6, len(labels), 1, squeeze=False, sharex=True)
    for ax, label in zip(axes[:, 0], labels):
        curve = data[data["label"] == label].groupby("round")[list(PARTS)].mean()
        ax.fill_between(curve.index, curve["client_accuracy_p10"], curve["client_accuracy_p90"], alpha=0.25,
                        label="10th-90th percentile")
        ax.plot(curve.index, curve["client_accuracy_p50"], label="median")
        ax.plot(curve.index, curve["client_accuracy_mean"], "--", label="mean (unweighted)")
        ax.plot(curve.index, curve["client_accuracy_min"], ":", color="black", label="worst client")
        mine = data[data["label"] == label].dropna(subset=["personal_accuracy_mean"]) \
            if "personal_accuracy_mean" in data else data.iloc[0:0]
        if len(mine):
            ax.plot(mine.groupby("round")["personal_accuracy_mean"].mean(), "-.", color="tab:red",
                    label="personal models' mean")
        ax.set(ylabel="client accuracy", ylim=(-0.02, 1.02), title=S.wrap(label, 90))
        S.integer_rounds(ax)
    S.legend(axes[0, 0], "clients")
    axes[-1, 0].set_xlabel("communication round")
    fig.suptitle("Accuracy of the global (and personal) models on each client's test data (mean over seeds)")
    return S.save(fig, path)


def _final(frame: pd.DataFrame, column: str) -> float | None:
    """The mean over the group's runs of each run's last evaluated value of ``column``."""
    if column not in frame:
        return None
    last = frame.dropna(subset=[column]).groupby("run")[column].last()
    return float(last.mean()) if len(last) else None


def section(runs: Sequence[RunRecord], groups: dict[str, list[RunRecord]], metrics: pd.DataFrame, out: Path,
            figs: dict[str, Path], img: Callable[[str, str], str]) -> list[str]:
    """The table of final per-client accuracies and the distribution figure (nothing without those columns)."""
    if "client_accuracy_mean" not in metrics or not metrics["client_accuracy_mean"].notna().any():
        return []
    rows: list[list[Any]] = []
    for label in groups:
        frame = metrics[metrics["label"] == label]
        if not frame["client_accuracy_mean"].notna().any():
            continue
        evaluated = _final(frame, "clients_evaluated")
        rows.append([label, None if evaluated is None else int(round(evaluated)), _final(frame, "test_accuracy"),
                     *[_final(frame, c) for c in FINAL]])
    figs["client_accuracy"] = distribution_over_rounds(metrics, out / "client_accuracy.png")
    return ["## Per-client accuracy", "", A.table(out, "client_accuracy", HEADER, rows), "",
            "The global model evaluated on each client's own test data at the last evaluated round (mean over seeds): "
            "the clients' unweighted mean, 10th percentile, median, worst client and variance (q-FFL's fairness "
            "measure), next to the pooled test accuracy (which weights clients by their test size); for "
            "personalization methods (Ditto, FedRep, FedPer, fine-tuning, FedBN's local buffers) each client's personal "
            "model on the same data (\"-\": the method has none, its global model is everyone's). The clients are the users' own test splits (LEAF, "
            "`eval.per_client=auto`) or a held-out share of each client's data (`eval.per_client=true`), a fixed "
            "seeded subset of at most `eval.max_clients`.", "", img("client_accuracy", "client accuracy distribution"),
            ""]
