"""What a Dask worker runs for one grid job: the Hydra job in this worker process, fenced, with an attempt record.

The job runs in the worker's own process (as a submitit job runs in its SLURM process), not in a child process:
when the worker dies (SIGKILL, a crashed or unplugged machine) the job dies with it, so nothing keeps writing
the run folder while the scheduler hands the job to another worker. A child process would survive its
worker's SIGKILL on macOS and Windows (no parent-death signal there) and become a second writer.

Each attempt appends a ``start`` and an ``end`` line to ``<sweep>/.dask/<job>.jsonl`` (worker, host, pid,
attempt id). While the job runs, a :class:`Fence` thread, and the round loop itself just before it writes a
round's records (:mod:`fedbench.writeguard`), end this process at once (``os._exit``) when the attempt is no
longer the job's only one: its worker lost the scheduler (a laptop woke up after the scheduler
gave its job away; Dask's own close would wait for the job to finish), the scheduler took the task back
(the launching command was interrupted), or a newer attempt's ``start`` line is in the record.
"""

import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from fedbench import writeguard

log = logging.getLogger(__name__)
RECORDS = ".dask"  # under the sweep folder, like submitit's .submitit/
STALE_EXIT = 75  # the exit status of a worker whose attempt was fenced off
LIVE_TASK_STATES = ("executing", "long-running")
DEAD_WORKER_STATES = ("closing", "closed", "failed")


@dataclass
class JobSpec:
    """Everything a worker needs to run one job; the config is composed on the launching machine (the worker
    needs no access to its conf/ folder, and timestamps in paths resolve once)."""

    config: DictConfig
    task_function: TaskFunction
    callbacks: Any
    singletons: dict[Any, Any]
    folder: str
    record: str
    fence_interval_s: float
    lock_wait_s: float


def record_path(sweep_dir: str | Path, job_num: int) -> Path:
    """``<sweep>/.dask/<job_num>.jsonl``: the job's attempts, one JSON line per start and end."""
    return Path(sweep_dir) / RECORDS / f"{job_num}.jsonl"


def append_record(path: Path, event: dict[str, Any]) -> None:
    """Append one JSON line (one short write; flushed and fsynced, so another machine can read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(event) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_records(path: Path) -> list[dict[str, Any]]:
    """The record's events, skipping a torn last line."""
    events = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def latest_attempt(path: Path) -> str | None:
    """The attempt id of the last ``start`` line (None when the record has none)."""
    starts = [e["attempt"] for e in read_records(path) if e.get("event") == "start"]
    return starts[-1] if starts else None


class Fence:
    """A daemon thread calling ``check()`` every ``interval`` seconds; the first reason it returns goes to
    ``on_stale`` (by default: log it and end the process). A context manager: stopped on exit."""

    def __init__(self, check: Callable[[], str | None], interval: float,
                 on_stale: Callable[[str], None] | None = None) -> None:
        self.check, self.interval = check, interval
        self.on_stale = on_stale or _exit_stale
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="fedbench-dask-fence", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            reason = self.check()
            if reason:
                self.on_stale(reason)
                return

    def __enter__(self) -> "Fence":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _exit_stale(reason: str) -> None:
    message = f"fedbench dask: this attempt is stale ({reason}); ending worker process {os.getpid()} now"
    log.error(message)
    print(message, file=sys.stderr, flush=True)
    os._exit(STALE_EXIT)  # no cleanup: the job must not write one more byte


def worker_check(worker: Any, key: Any, record: Path, attempt: str) -> Callable[[], str | None]:
    """The fence's test for a job running as task ``key`` on Dask ``worker``."""

    def check() -> str | None:
        if getattr(worker.status, "value", worker.status) in DEAD_WORKER_STATES:
            return f"worker {worker.address} lost its scheduler"
        task = worker.state.tasks.get(key)
        if task is None or task.state not in LIVE_TASK_STATES:
            return f"the scheduler took task {key} back ({task.state if task else 'forgotten'})"
        current = latest_attempt(record)
        if current is not None and current != attempt:
            return f"attempt {current} took the job over"
        return None

    return check


def wait_for_folder(folder: Path, timeout: float, poll: float = 0.5) -> None:
    """Wait until no other process holds the run folder's lock (fedbench.runlock). Where the lock reaches (this
    machine, NFS), the previous attempt may still hold it: asleep, or not yet ended by its fence after seeing this
    attempt's ``start`` line. Raises the lock's ConfigError after ``timeout`` seconds."""
    from fedbench.errors import ConfigError
    from fedbench.runlock import run_folder_lock

    deadline, warned = time.monotonic() + timeout, False
    while True:
        try:
            with run_folder_lock(folder):
                return
        except ConfigError as err:
            if time.monotonic() >= deadline:
                raise
            if not warned:
                log.warning("waiting up to %.0f s for the previous attempt to let go of the run folder: %s", timeout, err)
                warned = True
            time.sleep(poll)


def _enforce(check: Callable[[], str | None]) -> None:
    """The round loop's check before it writes (:mod:`fedbench.writeguard`): the same test, in the job's thread."""
    reason = check()
    if reason:
        _exit_stale(reason)


def run_dask_job(spec: JobSpec) -> JobReturn:
    """The Dask task of one job: refuse a multi-threaded worker, record the attempt, run the Hydra job fenced."""
    from distributed import get_worker

    from fedbench.errors import SetupError

    worker = get_worker()
    if worker.state.nthreads != 1:
        raise SetupError(f"fedbench's dask launcher runs one job per worker process (Hydra's state is per process): "
                           f"start workers with --nthreads 1 (worker {worker.address} has {worker.state.nthreads})")
    key, attempt, record = worker.get_current_task(), uuid.uuid4().hex[:12], Path(spec.record)
    where = {"worker": worker.address, "name": str(worker.name), "host": socket.gethostname(), "pid": os.getpid(),
             "resources": dict(worker.state.total_resources)}
    append_record(record, {"event": "start", "attempt": attempt, "time": time.time(), "key": str(key),
                           "folder": spec.folder, **where})
    check = worker_check(worker, key, record, attempt)
    with Fence(check, spec.fence_interval_s), writeguard.guarded_by(lambda: _enforce(check)):
        wait_for_folder(Path(spec.folder), spec.lock_wait_s)
        Singleton.set_state(spec.singletons)
        setup_globals()
        ret = run_job(hydra_context=HydraContext(config_loader=None, callbacks=spec.callbacks),  # type: ignore[arg-type]
                      task_function=spec.task_function, config=spec.config, job_dir_key="hydra.sweep.dir",
                      job_subdir_key="hydra.sweep.subdir")
    append_record(record, {"event": "end", "attempt": attempt, "time": time.time(), "status": ret.status.name, **where})
    return ret
