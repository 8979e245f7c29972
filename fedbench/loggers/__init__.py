"""Metric sinks: callback factories ``(output_dir, config, history) -> Callback``.

The ``logger`` config group is a list (``logger=[csv,wandb]``): each option adds its sink under
its own key, and :func:`sinks` chains them. ``metrics.csv`` / ``summary.json`` are the run's record
(reports, resume and HPO read them), so the ``csv`` sink is always added, listed or not.
"""

from __future__ import annotations

from typing import Any, Sequence

from fedbench.callbacks import Callback, Factory, chain

Logger = Callback  # a logger is a callback that records rows and the summary


def null_logger() -> Callback:
    """Discards everything (non-zero ranks of a distributed run)."""
    return Callback()


def sinks(output_dir: str, config: dict[str, Any] | None = None, history: Sequence[dict[str, Any]] = (),
          **factories: Factory) -> Callback:
    """The chosen sinks for one run folder, the CSV/JSON record first (added when not chosen)."""
    from fedbench.loggers.csv import csv_logger

    factories = {"csv": factories.pop("csv", csv_logger), **factories}
    return chain([factory(output_dir, config or {}, history) for factory in factories.values()])
