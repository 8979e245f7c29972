"""The run-folder lock's Windows path (``msvcrt.locking`` instead of ``fcntl.flock``), simulated on this machine
with a stand-in ``msvcrt`` that behaves like Windows' byte-range locks (one holder per byte of one file)."""

import json
import os
import types

import pytest

from fedbench import runlock
from fedbench.errors import ConfigError


def fake_msvcrt() -> types.SimpleNamespace:
    held: dict[tuple[int, int], int] = {}  # (inode, offset) -> holding descriptor

    def locking(fd: int, mode: int, nbytes: int) -> None:
        assert mode == ns.LK_NBLCK and nbytes == 1
        spot = (os.fstat(fd).st_ino, os.lseek(fd, 0, os.SEEK_CUR))
        if held.get(spot, fd) != fd and _open(held[spot]):
            raise PermissionError(13, "Permission denied")  # what Windows raises for a byte another handle locked
        held[spot] = fd

    ns = types.SimpleNamespace(LK_NBLCK=2, locking=locking, held=held)
    return ns


def _open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:  # closed: Windows drops a handle's locks with it
        return False


def test_without_fcntl_the_lock_is_msvcrt_on_a_byte_past_the_holder_record(tmp_path, monkeypatch):
    fake = fake_msvcrt()
    monkeypatch.setattr(runlock, "fcntl", None)
    monkeypatch.setattr(runlock, "msvcrt", fake, raising=False)
    with runlock.run_folder_lock(tmp_path):
        assert [offset for _, offset in fake.held] == [runlock.LOCK_OFFSET]
        assert json.loads((tmp_path / runlock.LOCK_FILE).read_text())["pid"] == os.getpid()  # written at 0
        with pytest.raises(ConfigError, match="is in use by another run"):
            with runlock.run_folder_lock(tmp_path):
                pass
    with runlock.run_folder_lock(tmp_path):  # the holder's descriptor is closed: free again
        pass
