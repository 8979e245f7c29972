"""A run folder's explicit status: ``status.json`` = ``running`` | ``finished`` | ``diverged`` | ``failed``.

Written atomically (a temporary file renamed over the old one) by the process that holds the folder's
lock: ``running`` (with pid and host) when the run is accepted, then its outcome. A folder whose status
says ``running`` while no process holds its lock was killed; the next command resumes it from its
checkpoint. A rerun skips only a run whose status is ``finished`` or ``diverged`` (or, for folders
written before statuses existed, whose rounds and summary are complete).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
DONE = ("finished", "diverged")


def write(out: Path, status: str, **info: Any) -> None:
    """Atomically record ``status`` (and ``info``) in ``<out>/status.json``."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {"status": status, "time": time.time(), "pid": os.getpid(), "host": socket.gethostname(), **info}
    tmp = out / f".{STATUS_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, out / STATUS_FILE)


def read(out: Path) -> dict[str, Any] | None:
    """The folder's status record, or None when it has none (or an unreadable one)."""
    try:
        return json.loads((out / STATUS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_done(out: Path) -> bool:
    """Finished or diverged; folders without a status file count as done (their other checks decide)."""
    record = read(out)
    return record is None or record.get("status") in DONE
