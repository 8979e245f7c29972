"""A fedbench callback for the benchmarks: one JSON line per round start, and one at the end of the run.

    +callbacks.clock._target_=round_clock.round_clock +callbacks.clock._partial_=true +callbacks.clock.path=OUT.jsonl
    (with ``benchmarks/`` on PYTHONPATH)

Every contender of ``bench_clients.py`` (the plain loop, fedbench, Flower) writes the same events at the same point
of its own loop: ``round_start`` before a round samples its clients, ``end`` after the last round's work. A round's
time is then the gap between consecutive starts, so it includes everything a contender does per round: for
fedbench its training, aggregation, evaluation, the CSV row, the console line and the per-round checkpoint.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fedbench.callbacks import Callback


def round_clock(output_dir: str, config: dict[str, Any] | None = None, history: Any = (), path: str = "") -> Callback:
    """Append ``round_start`` / ``end`` events with wall-clock times to ``path``."""
    log = open(path, "a")  # noqa: SIM115 - open for the run's life, closed by on_run_end

    def write(event: dict[str, Any]) -> None:
        log.write(json.dumps({**event, "t": time.time()}) + "\n")
        log.flush()

    def on_round_start(r: int) -> None:
        write({"event": "round_start", "round": r})

    def on_run_end(summary: dict[str, Any]) -> None:
        write({"event": "end"})
        log.close()

    return Callback(on_run_end=on_run_end, on_round_start=on_round_start)
