"""The C allocator's settings for a run's process (the top-level ``allocator`` key): keep freed memory for the next
round instead of handing it back to the kernel.

A round allocates the same large tensors again and again: a vectorised chunk's stacked parameters and gradients
(8 MB for 10 clients of McMahan's 2NN), the evaluation's activations. glibc's malloc (``mallopt(3)``) serves a
request above its mmap threshold with fresh pages from the kernel and unmaps them on free, and it gives a freed
heap top above its trim threshold back as well; both thresholds move at run time (128 KiB up to 32 MiB for the mmap
one). Either way the next round touches new pages and pays a page fault for each 4 KiB of them. Measured on the
2-core machine of ``reports/bench/clients.md`` (MNIST 2NN, 1000 clients, 100 a round, ``backend=vectorized``,
1 thread, one run of 8 rounds each): rounds 2-8 took 0.168-0.173 s with glibc's defaults, 0.142-0.151 s with
``keep_freed``; the sequential backend gained 2-3 %.

``keep_freed`` sets ``M_MMAP_THRESHOLD`` to 32 MiB (the largest glibc accepts on 64-bit machines) and
``M_TRIM_THRESHOLD`` to 256 MiB: requests up to 32 MiB come from the heap, and up to 256 MiB of freed heap stay
mapped for reuse. The results are bit-identical (the allocator decides where tensors live, not what they hold).
Requests above 32 MiB are still mapped and unmapped as before. ``system`` leaves the allocator as it is. Where
the C library is not glibc (macOS, musl) nothing is changed and ``summary.json`` says so.
"""

from __future__ import annotations

import ctypes
import platform

from fedbench.errors import require_choice

CHOICES = ("keep_freed", "system")
DEFAULT = "keep_freed"  # the top-level ``allocator`` key's default (conf/config.yaml) for configs without it
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 256 * 1024 * 1024

_applied: dict[str, str] = {}


def _glibc_mallopt():  # noqa: ANN202 - a ctypes function or None
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return getattr(ctypes.CDLL(None), "mallopt", None)


def apply_allocator(choice: str) -> str:
    """Apply ``choice`` to this process once and return what took effect (also :func:`applied`):
    ``keep_freed``, ``system`` or ``system (not glibc)``. Settings already made stay (mallopt has no undo); a later
    ``system`` in the same process reports ``keep_freed`` when an earlier run set it."""
    require_choice(choice, "allocator", CHOICES)
    if _applied.get("allocator") == "keep_freed" or choice == "system":
        _applied.setdefault("allocator", "system")
        return _applied["allocator"]
    mallopt = _glibc_mallopt()
    if mallopt is None:
        _applied["allocator"] = "system (not glibc)"
    elif mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1:
        _applied["allocator"] = "keep_freed"
    else:  # mallopt refused a value: this glibc's limits differ, keep its defaults
        _applied["allocator"] = "system (mallopt refused)"
    return _applied["allocator"]


def applied() -> str:
    """What this process's allocator runs with, for ``summary.json`` (``hardware.allocator``)."""
    return _applied.get("allocator", "system")
