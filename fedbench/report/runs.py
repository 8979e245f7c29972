"""Find and load run folders; reports read only what runs wrote to disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from fedbench.dicts import flatten  # noqa: F401 - re-exported for the report modules


@dataclass
class RunRecord:
    """One run folder: its summary (with the resolved config) or why it cannot be used."""

    path: Path
    summary: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


def find_run_dirs(roots: Iterable[Path]) -> list[Path]:
    """Every folder under ``roots`` that looks like a run (has metrics.csv, summary.json or .hydra/)."""
    found = set()
    for root in roots:
        for marker in ("metrics.csv", "summary.json", ".hydra/config.yaml"):
            found.update(p.parent if marker != ".hydra/config.yaml" else p.parent.parent for p in root.rglob(marker))
    return sorted(found)


def load_run(path: Path) -> RunRecord:
    """Load ``summary.json``; a run without one is unfinished (or crashed) and says so."""
    summary = path / "summary.json"
    if not summary.exists():
        rows = max(0, sum(1 for _ in (path / "metrics.csv").open()) - 1) if (path / "metrics.csv").exists() else 0
        return RunRecord(path, problem=f"unfinished: no summary.json ({rows} rounds in metrics.csv)")
    try:
        record = RunRecord(path, json.loads(summary.read_text()))
    except (ValueError, UnicodeDecodeError) as err:
        return RunRecord(path, problem=f"unreadable summary.json: {type(err).__name__}: {str(err).splitlines()[0]}")
    malformed = _malformed(record.summary)
    if malformed:
        return RunRecord(path, problem=f"malformed summary.json: {malformed}")
    try:
        metrics = read_csv(path / "metrics.csv")
    except Exception as err:  # noqa: BLE001 - any parse failure: the run is left out, the report goes on
        return RunRecord(path, problem=f"unreadable metrics.csv: {type(err).__name__}: {str(err).splitlines()[0]}")
    missing = [c for c in ("round", "test_accuracy") if c not in metrics.columns]
    if missing:
        return RunRecord(path, problem=f"metrics.csv lacks the columns {missing} (empty or not written by fedbench)")
    import pandas as pd

    text = [c for c in metrics.columns if not pd.api.types.is_numeric_dtype(metrics[c])]
    if text:
        return RunRecord(path, problem=f"metrics.csv column {text[0]!r} holds values that are not numbers (damaged?)")
    return record


def _malformed(summary: Any) -> str | None:
    """What is wrong with a summary the report cannot use (None when it is fine)."""
    if not isinstance(summary, dict):
        return f"a {type(summary).__name__}, not a mapping"
    if not isinstance(summary.get("config"), dict):
        return "no config mapping"
    for key in ("final_accuracy", "best_accuracy"):
        if summary.get(key) is not None and not isinstance(summary[key], (int, float)):
            return f"{key} is {summary[key]!r}, not a number"
    if not isinstance(summary.get("rounds_completed"), int):
        return "rounds_completed is missing or not an integer"
    return None


def config_value(summary: dict[str, Any], dotted: str) -> Any:
    """``config_value(s, "algorithm.mu")`` from the run's resolved config (None if absent)."""
    node: Any = summary.get("config", {})
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def read_csv(path: Path) -> "pandas.DataFrame":  # noqa: F821 - pandas imported lazily (report-only dependency)
    """A run's CSV file as a DataFrame (empty when missing)."""
    import pandas as pd

    return pd.read_csv(path) if path.exists() and path.stat().st_size else pd.DataFrame()


def load_partition(path: Path) -> dict[str, Any] | None:
    """A run's ``partition.json`` (per-client label counts), if it wrote one."""
    file = path / "partition.json"
    return json.loads(file.read_text()) if file.exists() else None
