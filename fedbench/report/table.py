"""Markdown summary table of a sweep, grouped by chosen config keys (mean over seeds).

    uv run python -m fedbench.report.table outputs/multirun/<sweep> --by algorithm straggler_fraction algorithm.mu
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from fedbench import choices as run_choices
from fedbench.report.analysis import md_table
from fedbench.report.runs import RunRecord, config_value, find_run_dirs, load_run

METRICS = ("final_accuracy", "best_accuracy", "rounds_to_target", "total_messages_up", "total_bytes_up", "total_wall_s")


def _mean(values: list[Any]) -> Any:
    nums = [v for v in values if v is not None]
    if not nums:
        return None
    return statistics.fmean(nums) if len(nums) > 1 else nums[0]


def group_value(summary: dict[str, Any], key: str) -> Any:
    """A run's value of ``key``: a config group's name gives the run's choice (``algorithm`` -> ``fedadam``), a dotted
    key its config value (a whole part as compact JSON)."""
    chosen = run_choices.of(summary.get("config", {}))
    if key in chosen:
        return chosen[key]
    value = config_value(summary, key)
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else value


def summary_table(runs: Sequence[RunRecord], by: Sequence[str]) -> str:
    """Rows grouped by ``by`` keys; each metric the mean over the group's runs (seeds), n = runs."""
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for run in runs:
        groups[tuple(group_value(run.summary, k) for k in by)].append(run)
    rows = [[*key, len(groups[key]), *(_mean([m.summary.get(metric) for m in groups[key]]) for metric in METRICS)]
            for key in sorted(groups, key=lambda k: tuple(str(x) for x in k))]
    return md_table([*by, "n", *METRICS], rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Markdown summary table of fedbench runs")
    parser.add_argument("paths", nargs="+", type=Path, help="run or sweep folders")
    parser.add_argument("--by", nargs="+", default=["algorithm"],
                        help="config groups (their chosen option: algorithm, topology, ...) or dotted config keys")
    args = parser.parse_args(argv)
    records = [load_run(p) for p in find_run_dirs(args.paths)]
    if not records:
        raise SystemExit(f"no run folders under {', '.join(map(str, args.paths))}")
    for bad in (r for r in records if r.problem):
        print(f"skipped {bad.path}: {bad.problem}")
    print(summary_table([r for r in records if not r.problem], args.by))


if __name__ == "__main__":
    main()
