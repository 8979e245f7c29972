"""The console's progress line of a round: metrics, traffic, time, clients per second and the time left."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("fedbench")


def log_row(row: dict[str, Any], rounds: int) -> None:
    """One line per round; the time left is the mean round time so far times the rounds left."""
    mean = row["cum_wall_s"] / max(row["round"], 1)
    log.info("round %d/%d  acc %.4f  test_loss %.4f  train_loss %.4f  clients %d  up %.2f MB  down %.2f MB  %.2fs  "
             "%.0f clients/s  eta %s", row["round"], rounds, row["test_accuracy"], row["test_loss"], row["train_loss"],
             row["clients"], row["cum_bytes_up"] / 1e6, row["cum_bytes_down"] / 1e6, row["wall_s"],
             row["clients"] / row["wall_s"] if row["wall_s"] > 0 else 0.0, duration(mean * (rounds - row["round"])))


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
