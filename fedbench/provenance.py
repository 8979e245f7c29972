"""Where a result comes from: fedbench's version, the git commit and whether the tree was dirty, the hash of
``uv.lock`` (the exact dependency set) and the command line. Recorded in every ``summary.json`` so that a number
can be traced to the code and config that produced it; ``fedbench.report`` warns when it mixes code versions."""

from __future__ import annotations

import functools
import hashlib
import shlex
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fedbench.secrets import mask

ROOT = Path(__file__).resolve().parents[1]  # the checkout (or site-packages for an installed wheel)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def _code() -> dict[str, Any]:
    """The code's identity, read once per process (a checkout's commit and dirty flag; None outside git)."""
    try:
        fedbench_version = version("fedbench")
    except PackageNotFoundError:
        fedbench_version = None
    commit = _git("rev-parse", "HEAD") if (ROOT / ".git").exists() else None
    dirty = None if commit is None else bool(_git("status", "--porcelain", "--untracked-files=no"))
    lock = ROOT / "uv.lock"
    lock_hash = hashlib.sha256(lock.read_bytes()).hexdigest()[:16] if lock.is_file() else None
    return {"fedbench_version": fedbench_version, "git_commit": commit, "git_dirty": dirty, "uv_lock_sha256": lock_hash}


def provenance() -> dict[str, Any]:
    """The code's identity (:func:`_code`) and this process's command line."""
    command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else None
    return {**_code(), "command": mask(command) if command else None}


def code_version(summary: dict[str, Any]) -> str:
    """A short label of the code a summary was written by: ``<commit[:10]>`` (``+dirty``), or ``unknown`` for
    summaries written before provenance was recorded."""
    p = summary.get("provenance") or {}
    commit = p.get("git_commit")
    if not commit:
        return f"version {p['fedbench_version']} (no commit)" if p.get("fedbench_version") else "unknown"
    return commit[:10] + ("+dirty" if p.get("git_dirty") else "")
