"""Numbers the report prints: the summary table, scaling tables, communication vs analytic
totals, McMahan et al.'s MNIST rounds, and per-study findings. Everything comes from run folders."""

from __future__ import annotations

import math
import statistics
from typing import Any, Sequence

import pandas as pd

from fedbench.report.runs import RunRecord

# McMahan et al. 2017, Table 2 (MNIST, C = 0.1): rounds to the target accuracy.
MCMAHAN_ROUNDS = {("mlp", 1, 10, "iid"): 87, ("mlp", 1, 10, "shards"): 664,
                  ("cnn", 5, 10, "iid"): 20, ("cnn", 5, 10, "shards"): 229}
MCMAHAN_TARGET = {"mlp": 0.97, "cnn": 0.99}


def mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    nums = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not nums:
        return None, None
    if any(math.isinf(v) for v in nums):  # e.g. epsilon without noise: no spread to speak of
        return statistics.fmean(nums), None
    return statistics.fmean(nums), (statistics.stdev(nums) if len(nums) > 1 else 0.0)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 10:
            return f"{int(value)}"
        return f"{value:.{digits if abs(value) < 100 else 1}f}"
    return str(value)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def table(out: Any, name: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A report table as Markdown, also written (unrounded) to ``<out>/<name>_table.csv``, the file prose quotes
    its numbers from (:mod:`fedbench.report.quotes`)."""
    pd.DataFrame([list(r) for r in rows], columns=list(header)).to_csv(out / f"{name}_table.csv", index=False)
    return md_table(header, rows)


# columns collect() adds to the long metrics table (not metrics a run wrote)
_TABLE_COLUMNS = ("label", "run", "seed", "world_size")


def extra_columns(metrics: pd.DataFrame) -> list[str]:
    """Numeric per-round columns beyond fedbench's standard ones (a server update's metrics such as
    FedNova's ``tau_eff``, a task's ``self.log`` values, ...), in the order they appear."""
    from fedbench.client_eval import COLUMNS as CLIENT_COLUMNS  # the per-client accuracy section shows these
    from fedbench.client_eval import PERSONAL_COLUMNS
    from fedbench.metrics import COLUMNS

    shown = (*CLIENT_COLUMNS, *PERSONAL_COLUMNS)
    return [c for c in metrics.columns if c not in COLUMNS and c not in _TABLE_COLUMNS and c not in shown
            and pd.api.types.is_numeric_dtype(metrics[c]) and metrics[c].notna().any()]


def extra_rows(metrics: pd.DataFrame, columns: Sequence[str]) -> list[list[Any]]:
    """Per group and extra column: its mean over rounds and its last value (each a mean over seeds)."""
    rows = []
    for label, frame in metrics.groupby("label", sort=False):
        for col in columns:
            per_run = frame.dropna(subset=[col]).groupby("run")[col]
            if per_run.ngroups:
                rows.append([label, col, mean_sd(per_run.mean().tolist())[0], mean_sd(per_run.last().tolist())[0]])
    return rows


def summary_rows(groups: dict[str, list[RunRecord]]) -> list[list[Any]]:
    """Per group: runs, final and best accuracy (mean, sd over seeds), rounds to target, totals."""
    rows = []
    for label, runs in groups.items():
        s = [r.summary for r in runs]
        final, final_sd = mean_sd([x["final_accuracy"] for x in s])
        best, _ = mean_sd([x["best_accuracy"] for x in s])
        reached = [x["rounds_to_target"] for x in s]
        rtt = mean_sd(reached)[0] if all(v is not None for v in reached) else None
        target = s[0].get("target_accuracy")
        rows.append([label, len(runs), final, final_sd, best,
                     fmt(rtt, 1) if rtt is not None else (f"not reached ({target})" if target is not None else "-"),
                     _count(mean_sd([x["total_messages_up"] + x["total_messages_down"] for x in s])[0]),
                     mean_sd([(x["total_bytes_up"] + x["total_bytes_down"]) / 1e6 for x in s])[0],
                     mean_sd([x["total_wall_s"] for x in s])[0]])
    return rows


def _count(value: float | None) -> int | float | None:
    """A mean of counts stays an integer when the seeds agree."""
    return int(value) if value is not None and float(value).is_integer() else value


SUMMARY_HEADER = ["group", "runs", "final acc", "sd", "best acc", "rounds to target", "messages", "MB (up+down)", "wall s"]


def scaling_table(runs: Sequence[RunRecord], metrics: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Median round time per worker count (round 1, the warm-up, left out), speed-up and efficiency."""
    rows = []
    for run in runs:
        if run.summary.get("config", {}).get("scaling_study") != kind:
            continue
        m = metrics[metrics["run"] == str(run.path)]
        timed = m[m["round"] > 1] if len(m) > 1 else m
        rank_compute = timed["compute_s"] / max(run.summary["hardware"]["world_size"], 1)
        rows.append({"workers": run.summary["hardware"]["world_size"], "round_s": float(timed["wall_s"].median()),
                     "compute_per_rank_s": float(rank_compute.median()), "comm_s": float(timed["comm_s"].median()),
                     "idle_s": float(timed["idle_s"].median()), "clients_per_round": int(m["clients"].iloc[0]),
                     "cores": run.summary["hardware"]["usable_cores"], "run": run.path.name})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).groupby("workers", as_index=False).agg(
        {"round_s": "median", "compute_per_rank_s": "median", "comm_s": "median", "idle_s": "median",
         "clients_per_round": "first", "cores": "first", "run": lambda v: ", ".join(v)}).sort_values("workers")
    base = table["round_s"].iloc[0] * table["workers"].iloc[0]
    if kind == "strong":
        table["speedup"] = base / table["round_s"]
        table["efficiency"] = table["speedup"] / table["workers"]
    else:
        table["efficiency"] = table["round_s"].iloc[0] / table["round_s"]
    return table


def analytic_bytes(summary: dict[str, Any]) -> tuple[str, str, int] | None:
    """(method, formula, bytes) for runs with a closed-form total; None for other algorithms."""
    cfg, p = summary["config"], summary["num_params"]
    if cfg.get("paradigm") == "data_parallel":
        n = summary["hardware"]["world_size"]
        batch = cfg["batch_size"] or summary["num_train"]
        steps = summary["rounds_completed"] * math.ceil(math.ceil(summary["num_train"] / n) / (batch // n))
        return "data-parallel SGD (ring all-reduce)", f"2 (N-1) P 4 S, N={n}, P={p}, S={steps}", 2 * (n - 1) * p * 4 * steps
    if cfg.get("paradigm") == "centralized":
        return "centralized SGD", "0", 0
    name = summary.get("algorithm")
    if name not in ("fedsgd", "fedavg") or cfg.get("straggler_fraction"):
        return None
    n, rounds = cfg["num_clients"], summary["rounds_completed"]
    m = max(1, math.floor(cfg["client_fraction"] * n + 1e-9))
    if name == "fedsgd" and m == n:
        return "parameter-server SGD", f"2 N P 4 S, N={n}, P={p}, S={rounds}", 2 * n * p * 4 * rounds
    return name, f"2 m P 4 R, m={m}, P={p}, R={rounds}", 2 * m * p * 4 * rounds


def communication_rows(groups: dict[str, list[RunRecord]]) -> list[list[Any]]:
    rows = []
    for label, runs in groups.items():
        s = runs[0].summary
        measured = s["total_bytes_up"] + s["total_bytes_down"]
        formula = analytic_bytes(s)
        per_round = measured / max(s["rounds_completed"], 1)
        source = s.get("bytes_source", "measured")
        if formula:
            rows.append([label, formula[0], formula[1], measured, source, formula[2], measured - formula[2], per_round / 1e6])
        else:
            rows.append([label, s.get("algorithm"), "no closed form here", measured, source, None, None, per_round / 1e6])
    return rows


COMM_HEADER = ["group", "method", "formula", "run's bytes", "bytes source", "analytic bytes", "difference", "MB per round"]


def mcmahan_rows(runs: Sequence[RunRecord]) -> list[list[Any]]:
    """Rounds to the paper's target at the best learning rate (lowest mean over seeds, every seed
    reaching it), with the seeds' range, next to McMahan et al.'s Table 2, per protocol (shard
    layout and input scaling are kept apart: they change rounds-to-target)."""
    cells: dict[tuple, dict[float, list[int | None]]] = {}
    for run in runs:
        cfg, s = run.summary["config"], run.summary
        if s.get("dataset") != "mnist" or cfg.get("num_clients") != 100 or abs(cfg.get("client_fraction", 0) - 0.1) > 1e-9:
            continue
        model = cfg["model"]["_target_"].rsplit(".", 1)[-1]
        part = cfg["partitioner"]["_target_"].rsplit(".", 1)[-1]
        paper_key = (model, cfg["local_epochs"], cfg["batch_size"], part)
        if paper_key not in MCMAHAN_ROUNDS or s.get("target_accuracy") != MCMAHAN_TARGET[model]:
            continue
        layout = "" if part == "iid" else cfg["partitioner"].get("layout", "label_pure")
        inputs = "[0, 1]" if cfg["dataset"].get("normalize") is False else "standardized"
        cells.setdefault((*paper_key, layout, inputs), {}).setdefault(cfg["lr"], []).append(s["rounds_to_target"])
    rows = []
    for key, by_lr in sorted(cells.items()):
        model, e, b, part, layout, inputs = key
        reached = {lr: v for lr, v in by_lr.items() if all(x is not None for x in v)}
        if reached:
            lr, got = min(reached.items(), key=lambda kv: statistics.fmean(kv[1]))
            shown = f"{statistics.fmean(got):.0f}" + (f" ({min(got)}-{max(got)}, {len(got)} seeds)" if len(got) > 1 else "")
        else:
            lr, shown = None, "not reached"
        name = {"mlp": "2NN", "cnn": "CNN"}[model]
        rows.append([name, e, b, "IID" if part == "iid" else f"non-IID (2 shards, {layout})", inputs,
                     f"{MCMAHAN_TARGET[model]:.0%}", shown, lr, MCMAHAN_ROUNDS[key[:4]]])
    return rows


MCMAHAN_HEADER = ["model", "E", "B", "data", "inputs", "target", "fedbench rounds (mean, range)", "best lr", "paper rounds"]


def smoothness(metrics: pd.DataFrame) -> dict[str, float]:
    """Mean |change in test accuracy| between consecutive evaluations, per group (lower = smoother)."""
    out = {}
    for label, part in metrics.dropna(subset=["test_accuracy"]).groupby("label", sort=False):
        diffs = part.sort_values("round").groupby("run")["test_accuracy"].diff().abs().dropna()
        out[label] = float(diffs.mean()) if len(diffs) else math.nan
    return out
