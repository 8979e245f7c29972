"""One writer per run folder: an exclusive ``fcntl.flock`` on ``<run>/.lock`` for the whole run.

A second command pointed at the same folder (or launched into a colliding default folder) stops at
once with a ConfigError naming the holder (pid, host, since when) instead of interleaving its rows
with the first run's. The lock is released when the run ends or its process dies (the kernel drops
flock locks with the process), so a crashed run never leaves a stale lock behind. Forked ranks
inherit the parent's lock; under torchrun/srun/mpirun only rank 0 takes it (it is the only writer).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fedbench.errors import ConfigError

LOCK_FILE = ".lock"


@contextmanager
def run_folder_lock(folder: Path, enabled: bool = True) -> Iterator[None]:
    """Hold the folder's lock for the duration (a no-op when ``enabled`` is False)."""
    if not enabled:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "{}"
            raise ConfigError(f"output_dir {folder} is in use by another run ({holder}); wait for it to finish, "
                              "or use another hydra.run.dir / hydra.sweep.dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
