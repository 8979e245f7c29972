"""Local files: ``metrics.csv`` (one row per round, flushed as it goes) and ``summary.json``."""

from __future__ import annotations

import csv as _csv
import json
import os
from pathlib import Path
from typing import Any, Sequence

from fedbench.loggers import Logger
from fedbench.metrics import COLUMNS, RANK_COLUMNS


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename), so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def csv_logger(output_dir: str, config: dict[str, Any] | None = None, history: Sequence[dict[str, Any]] = ()) -> Logger:
    """Append each round to ``<output_dir>/metrics.csv``; write ``summary.json`` at the end.

    Per-rank timings (a row's ``ranks`` list) go to ``rank_times.csv``, one line per round and rank.
    ``history`` holds the rows restored from a checkpoint: both files are rewritten (atomically) to
    exactly those rows, dropping any rounds logged after that checkpoint, which will be re-run.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path, ranks_path = out / "metrics.csv", out / "rank_times.csv"
    _rewrite(path, COLUMNS, history)
    _rewrite(ranks_path, RANK_COLUMNS, _rank_lines(history))

    def log_round(row: dict[str, Any]) -> None:
        with path.open("a", newline="") as f:
            _csv.DictWriter(f, COLUMNS, extrasaction="ignore").writerow(row)
        with ranks_path.open("a", newline="") as f:
            _csv.DictWriter(f, RANK_COLUMNS, extrasaction="ignore").writerows(_rank_lines([row]))

    def finish(summary: dict[str, Any]) -> None:
        write_json(out / "summary.json", summary)

    return Logger(log_round, finish)


def _rank_lines(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"round": row["round"], **rank} for row in rows for rank in row.get("ranks", ())]


def _rewrite(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = _csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
