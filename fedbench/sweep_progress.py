"""``job k/N`` and an ETA for every job of a multirun, with the local launcher and with submitit (SLURM) alike.

When the sweep starts, the number of jobs (the product of the sweep overrides' lengths, command line and
``hydra.sweeper.params``) and the start time go to ``<sweep>/.fedbench_sweep.json``. Each job, when it starts, logs
``job k/N: <its overrides>; d of N done, ETA <t>``: the jobs done are the sweep's run folders whose ``status.json`` says
finished, diverged or failed since the sweep started, and the ETA is the elapsed time per finished job times the jobs
left (jobs that run in parallel finish together, so the estimate holds for SLURM arrays too).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fedbench.progress import duration

log = logging.getLogger("fedbench")
RECORD = ".fedbench_sweep.json"
DONE = ("finished", "diverged", "failed")


def count_jobs(overrides: list[str], sweeper_params: dict[str, Any] | None = None) -> int:
    """How many jobs the basic sweeper makes of ``overrides`` (``a=1,2 b=x,y,z`` -> 6)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    texts = [*overrides, *(f"{k}={v}" for k, v in (sweeper_params or {}).items())]
    total = 1
    for override in OverridesParser.create().parse_overrides(texts):
        if override.is_sweep_override():
            total *= max(1, len(list(override.sweep_string_iterator())))
    return total


def finished_since(sweep: Path, started: float) -> int:
    """The sweep's run folders whose status is final and was written after ``started``."""
    done = 0
    for path in sweep.glob("*/status.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("status") in DONE and path.stat().st_mtime >= started:
            done += 1
    return done


def line(k: int, total: int, done: int, elapsed: float, overrides: list[str]) -> str:
    """``job 3/8: algorithm=scaffold; 2 of 8 done, ETA 1m30s``."""
    eta = f", ETA {duration(elapsed / done * (total - done))}" if 0 < done < total else ""
    return f"job {k}/{total}: {' '.join(overrides) or '(no overrides)'}; {done} of {total} done{eta}"


class SweepProgress(Callback):
    """Hydra callback (``hydra.callbacks.sweep_progress``): the ``job k/N`` line with an ETA."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            params = config.hydra.sweeper.get("params") or {}
            total = count_jobs(list(config.hydra.overrides.task), dict(params))
        except Exception:  # noqa: BLE001 - another sweeper's syntax: no count, no progress line
            return
        sweep = Path(config.hydra.sweep.dir)
        sweep.mkdir(parents=True, exist_ok=True)
        (sweep / RECORD).write_text(json.dumps({"jobs": total, "started": time.time()}) + "\n")

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if str(config.hydra.get("mode")) != "RunMode.MULTIRUN":
            return
        try:
            record = json.loads((Path(config.hydra.sweep.dir) / RECORD).read_text())
            k = int(config.hydra.job.num) + 1
        except Exception:  # noqa: BLE001 - a single run, or a sweep started by another sweeper
            return
        total, started = int(record["jobs"]), float(record["started"])
        done = finished_since(Path(config.hydra.sweep.dir), started)
        log.info(line(k, max(total, k), done, max(time.time() - started, 0.0), list(config.hydra.overrides.task)))

