"""Peak memory of a run: the resident memory of the process that runs it and all its descendants (forked ranks,
FedML's MPI processes, Flower's driver with Ray's daemons and actors), summed, sampled every ``interval`` seconds from
Linux's ``/proc/<pid>/status`` by a background thread (about 20 us a process; the exact proportional set size of
``smaps_rollup`` costs some 25 ms for a process that loaded torch, too much to sample while a run is timed).

Two sums: ``peak_memory_mb`` of ``RssAnon`` (what the processes allocated: heap, tensors, Python objects; libraries
and other file mappings, which the OS shares between processes, excluded; pages a forked rank still shares with its
parent counted in each), and ``peak_rss_mb`` of ``VmRSS`` (everything resident, shared libraries once per process).
Elsewhere (no ``/proc``) nothing is recorded. A peak between two samples can be missed: both are lower bounds."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    out = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    seen, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.append(pid)
            todo += _children(pid)
    return seen


def resident(pid: int) -> tuple[int, int]:
    """One process's (RssAnon, VmRSS) in bytes; zeros for a process that is gone (or a kernel thread)."""
    values = {"RssAnon:": 0, "VmRSS:": 0}
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            key = line.split(maxsplit=1)[0] if line else ""
            if key in values:
                values[key] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return values["RssAnon:"], values["VmRSS:"]


class PeakMemory:
    """Samples the summed resident memory of ``root``'s process tree until :meth:`stop`; :meth:`record` is the
    summary entry."""

    def __init__(self, root: int | None = None, interval: float = 0.5) -> None:
        self.root, self.interval = root or os.getpid(), interval
        self.peak, self.peak_rss, self.samples = 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fedbench-peak-memory", daemon=True)
        if PROC.exists():
            self._thread.start()

    def sample(self) -> None:
        both = [resident(pid) for pid in tree(self.root)]
        self.peak = max(self.peak, sum(anon for anon, _ in both))
        self.peak_rss = max(self.peak_rss, sum(rss for _, rss in both))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def record(self) -> dict[str, Any]:
        """``peak_memory_mb`` and ``peak_rss_mb`` (None where nothing was sampled) and how they were measured."""
        if self._thread.is_alive():
            self.sample()
        mb = (lambda b: round(b / 2**20, 1) if self.samples else None)  # noqa: E731
        return {"peak_memory_mb": mb(self.peak), "peak_rss_mb": mb(self.peak_rss),
                "memory_source": f"RssAnon (and VmRSS) summed over the run's process tree, sampled every "
                                 f"{self.interval} s"}
