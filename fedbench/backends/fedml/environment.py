"""FedML's isolated environment: built by uv from ``env/uv.lock`` on first use, then reused.

FedML 0.9.6 pins numpy<2, wandb==0.13.2, protobuf<4 and requests<2.32, so it cannot live in fedbench's
environment. ``ensure()`` syncs the small uv project in ``env/`` into a cache folder
(``$FEDBENCH_FEDML_ENV``, else ``$XDG_CACHE_HOME/fedbench/fedml-0.9.6-<lock hash>``) under a file lock
(:mod:`fedbench.backends.uvenv`, shared with ``backend=flower``).
"""

from __future__ import annotations

from pathlib import Path

from fedbench.backends import uvenv
from fedbench.errors import SetupError

PROJECT = Path(__file__).parent / "env"
DRIVER = PROJECT / "driver.py"
VERSION = "0.9.6"


class FedMLEnvironmentError(SetupError):
    """FedML's environment could not be built (no network, no uv, no suitable Python)."""


SPEC = uvenv.EnvSpec("fedml", VERSION, PROJECT, "FEDBENCH_FEDML_ENV", "backend=fedml", FedMLEnvironmentError)
python = uvenv.python


def lock_hash() -> str:
    return uvenv.lock_hash(SPEC)


def default_dir() -> Path:
    """Where the environment lives unless ``backend.env_dir`` says otherwise."""
    return uvenv.default_dir(SPEC)


def mpirun(env: Path) -> Path:
    """Open MPI's launcher, installed into the environment from PyPI (no system MPI needed)."""
    return env / "bin" / "mpirun"


def ensure(env: Path | str | None = None) -> tuple[Path, float]:
    """The ready environment and the seconds this call spent building it (0 when it was ready)."""
    return uvenv.ensure(SPEC, env)
