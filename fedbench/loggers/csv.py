"""Local files: ``metrics.csv`` (one row per round, flushed as it goes) and ``summary.json``."""

from __future__ import annotations

import csv as _csv
import json
import os
from pathlib import Path
from typing import Any, Sequence

from fedbench.loggers import Logger
from fedbench.metrics import COLUMNS


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename), so readers never see half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def csv_logger(output_dir: str, config: dict[str, Any] | None = None, history: Sequence[dict[str, Any]] = ()) -> Logger:
    """Append each round to ``<output_dir>/metrics.csv``; write ``summary.json`` at the end.

    ``history`` holds the rows restored from a checkpoint: the file is rewritten (atomically) to
    exactly those rows, dropping any rounds logged after that checkpoint, which will be re-run.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.csv"
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = _csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)

    def log_round(row: dict[str, Any]) -> None:
        with path.open("a", newline="") as f:
            _csv.DictWriter(f, COLUMNS, extrasaction="ignore").writerow(row)

    def finish(summary: dict[str, Any]) -> None:
        write_json(out / "summary.json", summary)

    return Logger(log_round, finish)
