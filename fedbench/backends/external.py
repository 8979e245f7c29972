"""Running another framework's driver script (``backend=fedml``, ``backend=flower``) in its own environment: start
it in a new session with its output in a log file, feed the JSON lines it appends to ``<handoff>/rounds.jsonl`` to
the runner while it runs, kill its whole process group if fedbench is interrupted, and raise with the log's tail if
it fails or ends without writing ``<handoff>/finished``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

POLL_S = 0.5


def child_environment(env: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The driver's environment variables: its environment's ``bin`` first on PATH, no user site, no fedbench
    ``PYTHONPATH`` leaking into the other environment."""
    child = {**os.environ, "PYTHONNOUSERSITE": "1", "PATH": f"{env / 'bin'}:{os.environ.get('PATH', '')}",
             **(extra or {})}
    child.pop("PYTHONPATH", None)
    return child


def run_driver(command: list[str], folder: Path, child_env: dict[str, str], name: str,
               on_entries: Callable[[list[dict[str, Any]]], int], log_name: str) -> None:
    """Run ``command``, feed ``folder/rounds.jsonl``'s new lines to ``on_entries`` (which returns how many it
    consumed) as they appear, raise if it fails."""
    logfile = folder / log_name
    rounds_file, seen = folder / "rounds.jsonl", 0
    with logfile.open("w") as logf:
        proc = subprocess.Popen(command, stdout=logf, stderr=subprocess.STDOUT, env=child_env, start_new_session=True)
        try:
            while True:
                done = proc.poll() is not None
                seen += on_entries(new_lines(rounds_file, seen))
                if done:
                    break
                time.sleep(POLL_S)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if proc.returncode != 0 or not (folder / "finished").exists():
        tail = logfile.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name} exited with code {proc.returncode} before finishing (log: {logfile}):\n{tail}")


def new_lines(path: Path, seen: int) -> list[dict[str, Any]]:
    """Complete JSON lines of ``path`` after the first ``seen``."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # the last piece may be a line still being written
    return [json.loads(line) for line in lines[seen:]]


def started(folder: Path, default: float) -> float:
    """When the driver began training (after its imports and set-up), or ``default`` before that."""
    path = folder / "started"
    return json.loads(path.read_text())["t"] if path.exists() else default
