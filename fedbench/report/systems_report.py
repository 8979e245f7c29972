"""Turn run folders into figures and ``systems_report.md`` (see ``fedbench.report.__main__``)."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from fedbench.report import analysis as A
from fedbench.report import backends
from fedbench.report import client_accuracy
from fedbench.report import figures as F
from fedbench.report import hpo_section
from fedbench.report import provenance as P
from fedbench.report import sections as S
from fedbench.report.grouping import display_name, flat_config, group_values, label, varying_keys
from fedbench.report.runs import RunRecord, load_partition, read_csv

SETUP_KEYS = ("choices.dataset", "choices.model", "choices.partitioner", "choices.algorithm", "choices.topology",
              "choices.paradigm", "choices.backend", "num_clients", "client_fraction", "local_epochs", "batch_size", "lr", "rounds",
              "target_accuracy", "network.collective")


def _rel(path: Path, base: Path) -> str:
    return os.path.relpath(path, base)


def collect(runs: Sequence[RunRecord]) -> tuple[list[str], dict[str, list[RunRecord]], pd.DataFrame]:
    """(varying keys, runs per group label, long table of every run's metrics rows). The table's ``label`` is the
    group's full label; ``hue`` and ``style`` are what the figures colour and dash by: with one varied setting its value
    (the legend titled by the setting, e.g. ``algorithm``), with two the first as colour and the second as line style,
    with more the full label (see :mod:`fedbench.report.figure_style`)."""
    keys = varying_keys(runs)
    groups: dict[str, list[RunRecord]] = defaultdict(list)
    frames = []
    for run in runs:
        values = group_values(run, keys)
        name = label(values)
        groups[name].append(run)
        m = read_csv(run.path / "metrics.csv")
        m["label"], m["run"], m["seed"] = name, str(run.path), run.summary.get("config", {}).get("seed")
        m["hue"], m["style"] = _factors(values)
        m["world_size"] = run.summary.get("hardware", {}).get("world_size", 1)
        frames.append(m)
    metrics = pd.concat(frames, ignore_index=True)
    names = [display_name(k) for k in keys]
    metrics.attrs.update(hue_title=names[0] if len(names) in (1, 2) else "group",
                         style_title=names[1] if len(names) == 2 else "setting")
    return keys, dict(groups), metrics


def _factors(values: dict[str, Any]) -> tuple[str, str | None]:
    """(colour, line style) of a group: one or two varied settings' values, else the label and no style."""
    shown = [str(v) for v in values.values()]
    if len(values) == 1:
        return shown[0], None
    if len(values) == 2:
        return shown[0], shown[1]
    return label(values), None


def write_report(runs: Sequence[RunRecord], problems: Sequence[RunRecord], out: Path, command: str,
                 title: str = "fedbench systems report") -> Path:
    """Write the PNGs and ``systems_report.md`` for finished ``runs`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    filled = P.fill_defaults(runs)
    keys, groups, metrics = collect(runs)
    figs: dict[str, Path] = {}
    figs["accuracy_vs_round"] = F.accuracy_vs_round(metrics, out / "accuracy_vs_round.png")
    figs["accuracy_vs_bytes"] = F.accuracy_vs_bytes(metrics, out / "accuracy_vs_bytes.png")
    figs["accuracy_vs_time"] = F.accuracy_vs_time(metrics, out / "accuracy_vs_time.png")
    parts = _partitions(runs, keys)
    for i, (name, partition) in enumerate(parts):
        figs[f"labels_{i}"] = F.label_distribution(partition, f"Label distribution: {name}", out / f"label_distribution_{i}.png")
    figs["time_breakdown"] = F.time_breakdown(metrics, out / "time_breakdown.png")
    scaling = {kind: A.scaling_table(runs, metrics, kind) for kind in ("strong", "weak")}
    if not scaling["strong"].empty:
        figs["strong"] = F.strong_scaling(scaling["strong"], out / "strong_scaling.png")
    if not scaling["weak"].empty:
        figs["weak"] = F.weak_scaling(scaling["weak"], out / "weak_scaling.png")
    summary_rows = A.summary_rows(groups)
    pd.DataFrame(summary_rows, columns=A.SUMMARY_HEADER).to_csv(out / "summary_table.csv", index=False)

    img = lambda key, alt: f"![{alt}]({figs[key].name})" if key in figs else ""  # noqa: E731
    text = _head(runs, keys, groups, command, title) + P.section(runs, filled)
    text += ["## Results", "", A.md_table(A.SUMMARY_HEADER, summary_rows), "",
             "final/best acc: test accuracy after the last round / best over rounds (mean over seeds; sd over seeds); "
             "rounds to target: first round at or above the target accuracy; messages and MB: client-server transfers "
             "(or all-reduce traffic for data-parallel runs) over the whole run.", "",
             img("accuracy_vs_round", "test accuracy vs round"), "", img("accuracy_vs_time", "accuracy vs time"), ""]
    for i, (name, _) in enumerate(parts):
        text += [img(f"labels_{i}", f"label distribution {name}"), ""]
    if problems:
        text += ["Runs left out (not finished or unreadable):", ""] + [f"- `{_rel(p.path, out)}`: {p.problem}" for p in problems] + [""]
    text += ["## Scaling", "", _scaling_text(scaling, figs, img), ""]
    text += ["## Communication analysis", "", A.table(out, "communication", A.COMM_HEADER, A.communication_rows(groups)), "",
             "A run's bytes (`cum_bytes_up + cum_bytes_down`) are counted from the tensors it sent where the bytes source "
             "is *measured*; *nominal* marks a backend that does not expose its traffic (FedML's simulators: m x the "
             "model's fp32 size per direction and round, a formula); Flower's are counted from the ArrayRecords crossing its "
             "Grid, each array as `np.save` writes it, so they exceed 4P by a .npy header per array. Analytic totals use "
             "P parameters of 4 bytes. The network model adds `comm_sim_s` per round "
             "(latency + size / bandwidth for the configured collective).", "",
             img("accuracy_vs_bytes", "accuracy vs bytes"), "", img("time_breakdown", "time breakdown"), ""]
    for section in (backends.section, S.topologies, S.compression, S.robustness, S.privacy, S.pipeline,
                    client_accuracy.section):
        text += section(runs, groups, metrics, out, figs, img)
    extra = A.extra_columns(metrics)
    if extra:
        figs["extra"] = F.extra_metrics(metrics, extra, out / "extra_metrics.png")
        text += ["## Other per-round metrics", "", "Columns a run's `metrics.csv` carries beyond the standard ones "
                 "(an algorithm's server-update metrics, a task's `self.log` values, ...).", "",
                 A.table(out, "extra_metrics", ["group", "metric", "mean over rounds", "last value"],
                         A.extra_rows(metrics, extra)), "",
                 img("extra", "other per-round metrics"), ""]
    text += ["## HPO findings", ""] + (hpo_section.section(runs, out) or [_hpo(groups, keys, runs), ""])
    text += ["## Discussion", "", _discussion(groups, keys, metrics, runs), ""]
    text += ["## Runs", "", A.md_table(["group", "run folders"], [[g, ", ".join(f"`{_rel(r.path, out)}`" for r in rs)]
                                                                  for g, rs in groups.items()]), ""]
    path = out / "systems_report.md"
    path.write_text("\n".join(text))
    return path


def _head(runs: Sequence[RunRecord], keys: Sequence[str], groups: dict[str, list[RunRecord]], command: str,
          title: str) -> list[str]:
    """The report's title, introduction and experimental setup (with the hardware the runs recorded)."""
    hw = runs[0].summary.get("hardware", {})
    text = [f"# {title}", "", f"Generated by `{command}` from {len(runs)} run folder(s); every number below is read from "
            "a run folder's `summary.json`, `metrics.csv` or `rank_times.csv` (see *Runs* at the end).", ""]
    text += ["## Introduction", "", _introduction(keys, groups), ""]
    return text + ["## Experimental setup", "", _setup(runs, keys), "", "Hardware (from the runs' `summary.json`): "
                   f"{hw.get('cpu', 'unknown CPU')}, {hw.get('cpu_count', '?')} cores ({hw.get('usable_cores', '?')} "
                   f"usable), {hw.get('torch_threads', '?')} torch threads per process, GPUs: "
                   f"{', '.join(hw.get('gpus') or []) or 'none'}; Python {hw.get('python', '?')}, torch "
                   f"{hw.get('torch', '?')}, host `{hw.get('host', '?')}`.", ""]


def _partitions(runs: Sequence[RunRecord], keys: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """One label-distribution picture per distinct (dataset, partitioner, clients), at most four."""
    seen, out = set(), []
    for run in runs:
        cfg = run.summary.get("config", {})
        key = (run.summary.get("dataset"), repr(cfg.get("partitioner")), cfg.get("num_clients"))
        partition = load_partition(run.path)
        if key in seen or partition is None:
            continue
        seen.add(key)
        part = str(cfg.get("partitioner", {}).get("_target_", "?")).rsplit(".", 1)[-1]
        out.append((f"{run.summary.get('dataset')}, {part}, {cfg.get('num_clients')} clients", partition))
    return out[:4]


def _introduction(keys: Sequence[str], groups: dict[str, list[RunRecord]]) -> str:
    seeds = sorted({r.summary["config"].get("seed") for rs in groups.values() for r in rs})
    varied = ", ".join(f"`{display_name(k)}`" for k in keys) or "nothing (replicates only)"
    return (f"This report compares {len(groups)} group(s) of federated/distributed training runs that vary {varied}, "
            f"over seed(s) {', '.join(map(str, seeds))}. It answers: which setting reaches the best test accuracy, how "
            "fast (rounds to target), at what communication cost (messages, bytes), how smooth training is, and "
            "where the time goes.")


def _setup(runs: Sequence[RunRecord], keys: Sequence[str]) -> str:
    flat = [flat_config(r) for r in runs]
    rows = []
    for key in SETUP_KEYS:
        values = sorted({str(f.get(key)) for f in flat})
        rows.append([display_name(key), ", ".join(values) + (" (varied)" if len(values) > 1 else "")])
    rows.append(["parameters", ", ".join(sorted({str(r.summary.get("num_params")) for r in runs}))])
    rows.append(["training examples", ", ".join(sorted({str(r.summary.get("num_train")) for r in runs}))])
    return A.md_table(["setting", "value"], rows)


def _scaling_text(scaling: dict[str, pd.DataFrame], figs: dict[str, Path], img) -> str:  # noqa: ANN001
    parts = []
    for kind in ("strong", "weak"):
        table = scaling[kind]
        if table.empty:
            continue
        cols = ["workers", "clients_per_round", "round_s", "compute_per_rank_s", "comm_s", "idle_s"]
        cols += ["speedup", "efficiency"] if kind == "strong" else ["efficiency"]
        parts.append(f"**{kind.capitalize()} scaling** (median round time over rounds 2.., one torch thread per "
                     f"worker, {int(table['cores'].iloc[0])} usable cores on this machine):")
        ints = ("workers", "clients_per_round")
        parts.append(A.md_table(cols, [[int(r[c]) if c in ints else float(r[c]) for c in cols] for _, r in table.iterrows()]))
        last = table.iloc[-1]
        if kind == "strong":
            parts.append(f"At {int(last.workers)} workers the measured speed-up is {last.speedup:.2f}x "
                         f"(efficiency {last.efficiency:.0%}) on {int(last.cores)} cores.")
        else:
            parts.append(f"At {int(last.workers)} workers a round takes {last.round_s:.3f} s vs {table['round_s'].iloc[0]:.3f} s "
                         f"with one (weak-scaling efficiency {last.efficiency:.0%}).")
        parts.append(img(kind, f"{kind} scaling"))
    return "\n\n".join(parts) or "No scaling study among these runs (`-m +study=strong_scaling`, `+study=weak_scaling`)."


def _hpo(groups: dict[str, list[RunRecord]], keys: Sequence[str], runs: Sequence[RunRecord]) -> str:
    if "lr" not in keys:
        return "No hyperparameter was searched in these runs (no learning-rate grid)."
    others = [k for k in keys if k != "lr"]
    best: dict[str, tuple[float, Any]] = {}
    for run in runs:
        key = label(group_values(run, others))
        acc = run.summary.get("best_accuracy") or 0.0
        if key not in best or acc > best[key][0]:
            best[key] = (acc, run.summary["config"]["lr"])
    rows = [[k, lr, acc] for k, (acc, lr) in best.items()]
    return "Learning-rate grid: the best learning rate (by best test accuracy) per setting.\n\n" + \
        A.md_table(["setting", "best lr", "best acc"], rows)


def _discussion(groups: dict[str, list[RunRecord]], keys: Sequence[str], metrics: pd.DataFrame, runs) -> str:  # noqa: ANN001
    rows = {row[0]: row[1:] for row in A.summary_rows(groups)}  # runs, final, sd, best, rtt, messages, MB, wall
    ranked = sorted(rows.items(), key=lambda kv: -(kv[1][1] if kv[1][1] is not None else -1))
    points = []
    if len(ranked) > 1:
        (top, t), (low, w) = ranked[0], ranked[-1]
        points.append(f"- Highest final accuracy: **{top}** ({A.fmt(t[1])}); lowest: **{low}** ({A.fmt(w[1])}).")
        by_msgs = sorted(rows.items(), key=lambda kv: kv[1][5] or 0)
        if by_msgs[0][1][5] == by_msgs[-1][1][5] and by_msgs[0][1][6] == by_msgs[-1][1][6]:
            points.append(f"- Every group sends the same: {A.fmt(by_msgs[0][1][5])} messages, {A.fmt(by_msgs[0][1][6], 1)} MB "
                          "(equal N, C and rounds; the algorithms differ in local work, not in traffic).")
        else:
            points.append(f"- Fewest messages: **{by_msgs[0][0]}** ({A.fmt(by_msgs[0][1][5])}, {A.fmt(by_msgs[0][1][6], 1)} MB); "
                          f"most: **{by_msgs[-1][0]}** ({A.fmt(by_msgs[-1][1][5])}, {A.fmt(by_msgs[-1][1][6], 1)} MB).")
    for key in keys:  # how final accuracy reacts to each varied setting (mean over everything else)
        name = display_name(key)
        effect: dict[Any, list[float]] = defaultdict(list)
        for run in runs:
            (value,) = group_values(run, [key]).values()
            if run.summary.get("final_accuracy") is not None:
                effect[value].append(run.summary["final_accuracy"])
        if len(effect) > 1:
            parts = ", ".join(f"{v}: {A.fmt(sum(a) / len(a))}" for v, a in sorted(effect.items(), key=lambda kv: str(kv[0])))
            points.append(f"- Final accuracy by `{name}` (mean over the other settings): {parts}.")
    smooth = A.smoothness(metrics)
    if smooth:
        points.append("- Smoothness, mean |change of test accuracy| between consecutive evaluations (lower is smoother): "
                      + ", ".join(f"{k}: {A.fmt(v)}" for k, v in smooth.items()) + ".")
    diverged = [r for r in runs if r.summary.get("diverged")]
    if diverged:
        points.append(f"- {len(diverged)} run(s) diverged (NaN loss) and stopped early: "
                      + ", ".join(f"`{r.path.name}`" for r in diverged) + ".")
    paper = A.mcmahan_rows(runs)
    if paper:
        points.append("\nMcMahan et al. (2017), Table 2, next to these runs (rounds to target; best over the lr grid):\n\n"
                      + A.md_table(A.MCMAHAN_HEADER, paper))
    return "\n".join(points) if points else "A single group: see the table above."
