"""The systems report's Backends section: one experiment through different backends (in-process, ddp, FedML, Flower),
what each costs (start-up, round time, memory) and how far each accuracy curve is from the in-process one, per round."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from fedbench.report import analysis as A
from fedbench.report import figures as F
from fedbench.report.analysis import mean_sd
from fedbench.report.runs import RunRecord

HEADER = ["group", "backend", "processes", "start-up s", "round 1 s", "median round s", "rounds s in all",
          "peak memory MB", "final acc", "max accuracy gap to reference"]
FRAMEWORKS = ("fedml", "flower")  # backends that run another framework and record its start-up in summary.json


def _framework(summary: dict[str, Any]) -> dict[str, Any]:
    return next((summary[k] for k in FRAMEWORKS if isinstance(summary.get(k), dict)), {})


def _mean(members: Sequence[RunRecord], get: Callable[[dict[str, Any]], Any]) -> Any:
    values = [get(r.summary) for r in members]
    return mean_sd(values)[0] if any(v is not None for v in values) else None


def gaps(groups: dict[str, list[RunRecord]], metrics: pd.DataFrame) -> tuple[str | None, pd.DataFrame]:
    """The reference (the first in-process group) and each group's |accuracy - reference's| per round."""
    curves = {label: metrics[metrics["label"] == label].groupby("round")["test_accuracy"].mean() for label in groups}
    reference = next((label for label, rs in groups.items() if rs[0].summary.get("backend") == "inprocess"), None)
    if reference is None:
        return None, pd.DataFrame()
    return reference, pd.DataFrame({label: (curve - curves[reference]).abs() for label, curve in curves.items()})


def section(runs: Sequence[RunRecord], groups: dict[str, list[RunRecord]], metrics: pd.DataFrame, out: Path,
            figs: dict[str, Path], img: Callable[[str, str], str]) -> list[str]:
    if len({r.summary.get("backend") for r in runs}) < 2:
        return []
    reference, gap = gaps(groups, metrics)
    rows = []
    for label, members in groups.items():
        first, frame = members[0].summary, metrics[metrics["label"] == label].sort_values("round")
        processes = _framework(first).get("processes") or first.get("hardware", {}).get("world_size")
        rows.append([label, first.get("backend"), processes, _mean(members, lambda s: _framework(s).get("startup_s")),
                     frame["wall_s"].iloc[0] if len(frame) else None, frame["wall_s"].median(),
                     _mean(members, lambda s: s.get("total_wall_s")), _mean(members, lambda s: s.get("peak_memory_mb")),
                     _mean(members, lambda s: s["final_accuracy"]), gap[label].max() if label in gap else None])
    text = ["## Backends", "", A.table(out, "backends", HEADER, rows), "",
            "The same experiment (data, split, initial model, sampled clients) through each backend. processes: "
            "ranks, FedML's processes, or Flower's driver (its ServerApp) and client actors (Ray's own daemons not "
            "counted). start-up: from "
            "launching the framework's process(es) to the start of training (FedML: after its imports and set-up; "
            "Flower: until the first ClientApp runs on a Ray actor, i.e. its imports, Ray, the simulation engine and "
            "the first actor); round 1 still holds the other actors' start. Round times are wall-clock seconds per "
            "round as each backend logged them (FedML's include its evaluation on every client's training data). "
            "peak memory: the run's process tree (fedbench's process and every process below it: ranks, FedML's, "
            "Flower's driver, Ray's daemons and actors), summed resident anonymous memory (RssAnon), sampled every "
            "0.5 s. The last column is the largest per-round difference in test accuracy from "
            f"`{reference}`; the table below has it for every round.", ""]
    if not gap.empty:
        figs["backend_gaps"] = F.accuracy_gap(gap, out / "backend_gaps.png")
        table = [[int(r), *(gap.loc[r, label] for label in gap.columns)] for r in gap.index]
        text += [A.table(out, "backend_gaps", ["round", *gap.columns], table), "",
                 img("backend_gaps", "accuracy gap to the reference per round"), ""]
    return text
