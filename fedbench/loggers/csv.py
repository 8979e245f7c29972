"""Local files: ``metrics.csv`` (one row per round, flushed as it goes) and ``summary.json``."""

from __future__ import annotations

import csv as _csv
import json
import os
from pathlib import Path
from typing import Any, Sequence

from fedbench.callbacks import Callback
from fedbench.metrics import RANK_COLUMNS, columns


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename), so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def csv_logger(output_dir: str, config: dict[str, Any] | None = None, history: Sequence[dict[str, Any]] = ()) -> Callback:
    """Append each round to ``<output_dir>/metrics.csv``; write ``summary.json`` at the end.

    The columns are the standard ones (:data:`fedbench.metrics.COLUMNS`) followed by any other
    scalar a row carries (a server update's metrics, the task's ``self.log`` values, ...) in the
    order they first appear; when a row brings a new column, the file is rewritten atomically
    with the wider header (earlier rows leave it empty). Per-rank timings (a row's ``ranks``
    list) go to ``rank_times.csv``, one line per round and rank. ``history`` holds the rows
    restored from a checkpoint: both files are rewritten (atomically) to exactly those rows,
    dropping any rounds logged after that checkpoint, which will be re-run.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path, ranks_path = out / "metrics.csv", out / "rank_times.csv"
    rows = list(history)
    header = columns(rows)
    _rewrite(path, header, rows)
    _rewrite(ranks_path, RANK_COLUMNS, _rank_lines(rows))

    def log_round(row: dict[str, Any], server: Any = None, clients: Any = None) -> None:
        rows.append(row)
        if set(columns([row])) <= set(header):
            with path.open("a", newline="") as f:
                _csv.DictWriter(f, header, extrasaction="ignore").writerow(row)
        else:
            header[:] = columns(rows)
            _rewrite(path, header, rows)
        with ranks_path.open("a", newline="") as f:
            _csv.DictWriter(f, RANK_COLUMNS, extrasaction="ignore").writerows(_rank_lines([row]))

    def finish(summary: dict[str, Any]) -> None:
        write_json(out / "summary.json", summary)

    return Callback(log_round, finish)


def _rank_lines(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"round": row["round"], **rank} for row in rows for rank in row.get("ranks", ())]


def _rewrite(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = _csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
