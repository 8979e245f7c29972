"""Metric sinks: factories ``(output_dir, config) -> Logger``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Logger:
    """Where per-round rows and the final summary go."""

    log_round: Callable[[dict[str, Any]], None]
    finish: Callable[[dict[str, Any]], None]


def null_logger() -> Logger:
    """Discards everything (non-zero ranks of a distributed run)."""
    return Logger(lambda row: None, lambda summary: None)
