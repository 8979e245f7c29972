"""An isolated uv project synced into a cache folder under a file lock: the environment of a framework that cannot
live in fedbench's own lock (FedML 0.9.6, Flower's simulation engine), built on first use and then reused.

``ensure(spec)`` syncs the small uv project ``spec.project`` (its own ``pyproject.toml`` and ``uv.lock``) into
``$<spec.env_var>``, else ``$XDG_CACHE_HOME/fedbench/<spec.name>-<version>-<lock hash>``, under a file lock (a
SLURM grid's jobs may all start at once), and records the lock's hash once the sync succeeded; later runs only
compare the hash. A changed lock file gets a new folder. When uv is missing or the sync fails (no package index,
no suitable Python), ``spec.error`` is raised: a :class:`~fedbench.errors.SetupError` saying why it cannot run here.
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
from dataclasses import dataclass
from pathlib import Path

from fedbench.errors import SetupError

log = logging.getLogger("fedbench")
STAMP = ".fedbench-ready.json"


@dataclass(frozen=True)
class EnvSpec:
    """One isolated environment.

    Attributes:
        name: the framework's short name (the cache folder's prefix, ``fedml``, ``flower``).
        version: the framework version the lock pins (for messages and the folder name).
        project: the uv project folder (``pyproject.toml`` + ``uv.lock``).
        env_var: the environment variable that names the folder (``FEDBENCH_FEDML_ENV``).
        backend: the backend option, for messages (``backend=fedml``).
        error: the :class:`SetupError` subclass raised when it cannot be built.
        size_hint: what the first build costs, for the log line.
    """

    name: str
    version: str
    project: Path
    env_var: str
    backend: str
    error: type[SetupError] = SetupError
    size_hint: str = "several GB with torch, a few minutes on a cold uv cache"


def lock_hash(spec: EnvSpec) -> str:
    return hashlib.sha256((spec.project / "uv.lock").read_bytes()).hexdigest()[:12]


def default_dir(spec: EnvSpec) -> Path:
    """Where the environment lives unless the backend's ``env_dir`` says otherwise."""
    if os.environ.get(spec.env_var):
        return Path(os.environ[spec.env_var])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fedbench" / f"{spec.name}-{spec.version}-{lock_hash(spec)}"


def python(env: Path) -> Path:
    return env / "bin" / "python"


def uv_command(spec: EnvSpec) -> list[str]:
    """uv: the one running fedbench (``uv run`` sets ``UV``), on PATH, or the ``uv`` Python package."""
    if os.environ.get("UV") and Path(os.environ["UV"]).exists():
        return [os.environ["UV"]]
    if shutil.which("uv"):
        return [shutil.which("uv")]
    if importlib.util.find_spec("uv") is not None:
        from uv import find_uv_bin

        return [find_uv_bin()]
    raise spec.error(f"{spec.backend} builds {spec.name}'s own environment with uv, and uv was not found: "
                     "install it (pip install uv) or run fedbench through `uv run`")


def is_ready(spec: EnvSpec, env: Path) -> bool:
    stamp = env / STAMP
    return stamp.exists() and json.loads(stamp.read_text()).get("lock") == lock_hash(spec) and python(env).exists()


def ensure(spec: EnvSpec, env: Path | str | None = None) -> tuple[Path, float]:
    """The ready environment and the seconds this call spent building it (0 when it was ready)."""
    env = Path(env) if env else default_dir(spec)
    if is_ready(spec, env):
        return env, 0.0
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another job may be building it; wait, then reuse its work
        if is_ready(spec, env):
            return env, 0.0
        log.warning("%s: building %s %s's isolated environment in %s (first use only: %s) ...", spec.backend,
                    spec.name, spec.version, env, spec.size_hint)
        t0 = time.perf_counter()
        cmd = [*uv_command(spec), "sync", "--frozen", "--project", str(spec.project)]
        proc = subprocess.run(cmd, env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(env)}, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise spec.error(
                f"{spec.backend}: building {spec.name} {spec.version}'s environment in {env} failed (`{' '.join(cmd)}` "
                f"exited {proc.returncode}), so it cannot run here. It needs the package index (PyPI) and a Python "
                f"3.11 that uv can find or download. uv said:\n{proc.stderr.strip()[-2000:]}")
        seconds = time.perf_counter() - t0
        (env / STAMP).write_text(json.dumps({"lock": lock_hash(spec), "build_s": round(seconds, 1)}) + "\n")
        log.warning("%s: %s's environment is ready (%.0f s); later runs reuse it", spec.backend, spec.name, seconds)
        return env, seconds
