"""One writer per run folder: an exclusive ``fcntl.flock`` on ``<run>/.lock`` for the whole run.

A second command pointed at the same folder (or launched into a colliding default folder) stops at
once with a ConfigError naming the holder (pid, host, since when) instead of interleaving its rows
with the first run's. The lock is released when the run ends or its process dies (the kernel drops
flock locks with the process), so a crashed run never leaves a stale lock behind. Forked ranks
inherit the parent's lock; under torchrun/srun/mpirun only rank 0 takes it (it is the only writer).

Where it holds: processes on one machine and a local disk (and NFS with working lockd). It is a second guard,
not the way grids across machines claim jobs (the SLURM or Dask scheduler assigns them): on SMB/CIFS shares
lock semantics depend on the client and server, and on synced folders (Dropbox, OneDrive, iCloud Drive,
Syncthing) a lock never reaches the other machine. On Windows, ``msvcrt.locking`` takes the place of
``flock`` (one byte far past the file's content, released when the process ends), so fedbench imports there.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fedbench.errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

LOCK_FILE = ".lock"
LOCK_OFFSET = 1 << 20  # Windows: the locked byte, past the holder's record (which is rewritten under the lock)


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; False when another process holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    os.lseek(fd, LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError:
        return False
    finally:
        os.lseek(fd, 0, os.SEEK_SET)


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
        if not _try_lock(fd):
            holder = path.read_text().strip() or "{}"
            raise ConfigError(f"output_dir {folder} is in use by another run ({holder}); wait for it to finish, "
                              "or use another hydra.run.dir / hydra.sweep.dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
