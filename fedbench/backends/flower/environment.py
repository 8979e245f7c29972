"""Flower's isolated environment: built by uv from ``env/uv.lock`` on first use, then reused.

Flower's simulation engine brings Ray (with its own grpcio, protobuf and cryptography pins), which fedbench's own lock
need not carry. ``ensure()`` syncs the small uv project in ``env/`` (``flwr[simulation]`` 1.42 and fedbench's torch)
into ``$FEDBENCH_FLOWER_ENV``, else ``$XDG_CACHE_HOME/fedbench/flower-1.42.0-<lock hash>``, under a file lock
(:mod:`fedbench.backends.uvenv`, shared with ``backend=fedml``).
"""

from __future__ import annotations

from pathlib import Path

from fedbench.backends import uvenv
from fedbench.errors import SetupError

PROJECT = Path(__file__).parent / "env"
DRIVER = PROJECT / "driver.py"
VERSION = "1.42.0"


class FlowerEnvironmentError(SetupError):
    """Flower's environment could not be built (no package index, no uv, no suitable Python)."""


SPEC = uvenv.EnvSpec("flower", VERSION, PROJECT, "FEDBENCH_FLOWER_ENV", "backend=flower", FlowerEnvironmentError,
                     size_hint="about 4 GB installed (torch with its CUDA libraries, Ray), a few minutes on a cold "
                               "uv cache")
python = uvenv.python


def default_dir() -> Path:
    """Where the environment lives unless ``backend.env_dir`` says otherwise."""
    return uvenv.default_dir(SPEC)


def ensure(env: Path | str | None = None) -> tuple[Path, float]:
    """The ready environment and the seconds this call spent building it (0 when it was ready)."""
    return uvenv.ensure(SPEC, env)
