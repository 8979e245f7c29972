"""How long a run took to start, phase by phase, for ``summary.json``'s ``startup`` record: ``imports_s`` (process
start to the run's first line of fedbench work: the interpreter, torch, Lightning and Hydra imports, composing the
configuration; only for the first run of a process, later jobs of an in-process grid import nothing), ``data_s``
(reading the dataset, partitioning it, the clients' tensors), ``build_s`` (the other parts: task, model, algorithm,
backend and their checks), ``to_first_round_s`` (process start to the start of round 1, the first client's
training; first run of a process only, as ``imports_s``), ``first_round_s`` (round 1's wall time). Measured with
the wall clock; the process start is the kernel's (``/proc/self/stat``), so nothing before fedbench's own first
import is missed."""

from __future__ import annotations

import os
import time


def _process_start() -> float | None:
    """The wall-clock time this process started, to the kernel's clock tick (10 ms): its start in ticks after boot
    (``/proc/self/stat``) against the time since boot now (``CLOCK_BOOTTIME``); None off Linux."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: start time in clock ticks after boot
        alive = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - alive
    except (OSError, ValueError, IndexError, AttributeError):
        return None


STARTED = _process_start()
_first_run = True


def since_process_start() -> float | None:
    """Seconds since this process started (None where unknown)."""
    return None if STARTED is None else time.time() - STARTED


def imports_s() -> float | None:
    """Process start to now for the process's first run (its imports and configuration), None for later runs."""
    global _first_run
    first, _first_run = _first_run, False
    return since_process_start() if first else None
