"""FedML's isolated environment: built by uv from ``env/uv.lock`` on first use, then reused.

FedML 0.9.6 pins numpy<2, wandb==0.13.2, protobuf<4 and requests<2.32, so it cannot live in fedbench's
environment. ``ensure()`` syncs the small uv project in ``env/`` into a cache folder
(``$FEDBENCH_FEDML_ENV``, else ``$XDG_CACHE_HOME/fedbench/fedml-0.9.6-<lock hash>``) under a file lock
(a SLURM grid's jobs may all start at once), and records the lock's hash once the sync succeeded; later
runs only compare the hash. A changed lock file gets a new folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

from fedbench.errors import SetupError

log = logging.getLogger("fedbench")

PROJECT = Path(__file__).parent / "env"
DRIVER = PROJECT / "driver.py"
VERSION = "0.9.6"
STAMP = ".fedbench-ready.json"


class FedMLEnvironmentError(SetupError):
    """FedML's environment could not be built (no network, no uv, no suitable Python)."""


def lock_hash() -> str:
    return hashlib.sha256((PROJECT / "uv.lock").read_bytes()).hexdigest()[:12]


def default_dir() -> Path:
    """Where the environment lives unless ``backend.env_dir`` says otherwise."""
    if os.environ.get("FEDBENCH_FEDML_ENV"):
        return Path(os.environ["FEDBENCH_FEDML_ENV"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fedbench" / f"fedml-{VERSION}-{lock_hash()}"


def python(env: Path) -> Path:
    return env / "bin" / "python"


def mpirun(env: Path) -> Path:
    """Open MPI's launcher, installed into the environment from PyPI (no system MPI needed)."""
    return env / "bin" / "mpirun"


def uv_command() -> list[str]:
    """uv: the one running fedbench (``uv run`` sets ``UV``), on PATH, or the ``uv`` Python package."""
    if os.environ.get("UV") and Path(os.environ["UV"]).exists():
        return [os.environ["UV"]]
    if shutil.which("uv"):
        return [shutil.which("uv")]
    if importlib.util.find_spec("uv") is not None:
        from uv import find_uv_bin

        return [find_uv_bin()]
    raise FedMLEnvironmentError("backend=fedml builds FedML's own environment with uv, and uv was not found: "
                                "install it (pip install uv) or run fedbench through `uv run`")


def is_ready(env: Path) -> bool:
    stamp = env / STAMP
    return stamp.exists() and json.loads(stamp.read_text()).get("lock") == lock_hash() and python(env).exists()


def ensure(env: Path | None = None) -> tuple[Path, float]:
    """The ready environment and the seconds this call spent building it (0 when it was ready)."""
    env = Path(env) if env else default_dir()
    if is_ready(env):
        return env, 0.0
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another job may be building it; wait, then reuse its work
        if is_ready(env):
            return env, 0.0
        log.warning("backend=fedml: building FedML %s's isolated environment in %s (first use only: several GB "
                    "with torch, a few minutes on a cold uv cache) ...", VERSION, env)
        t0 = time.perf_counter()
        cmd = [*uv_command(), "sync", "--frozen", "--project", str(PROJECT)]
        proc = subprocess.run(cmd, env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(env)}, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise FedMLEnvironmentError(
                f"backend=fedml: building FedML {VERSION}'s environment in {env} failed (`{' '.join(cmd)}` exited "
                f"{proc.returncode}). It needs the package index (PyPI) and a Python 3.11 that uv can find or "
                f"download. uv said:\n{proc.stderr.strip()[-2000:]}")
        seconds = time.perf_counter() - t0
        (env / STAMP).write_text(json.dumps({"lock": lock_hash(), "build_s": round(seconds, 1)}) + "\n")
        log.warning("backend=fedml: FedML's environment is ready (%.0f s); later runs reuse it", seconds)
        return env, seconds
