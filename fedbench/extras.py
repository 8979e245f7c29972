"""Optional dependencies: import one, or stop with the one line that says how to install it."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from fedbench.errors import SetupError

# module -> the extra of pyproject.toml that installs it
EXTRAS = {"datasets": "hf", "flwr_datasets": "hf", "wandb": "wandb", "psycopg2": "postgres", "cmaes": "cmaes"}


def require_module(module: str, needed_for: str) -> ModuleType:
    """``import module``, or a :class:`~fedbench.errors.SetupError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = EXTRAS.get(module.split(".")[0], "hf")
        raise SetupError(f"{needed_for} needs the optional extra '{extra}' ({module} is not installed): run "
                         f"`uv sync --extra {extra}` (or `pip install 'fedbench[{extra}]'`)") from err


def check_available(module: str, needed_for: str) -> None:
    """Refuse early (without importing it) when ``module`` is not installed; see :func:`require_module`."""
    if importlib.util.find_spec(module.split(".")[0]) is None:
        require_module(module, needed_for)  # raises the SetupError naming the extra


def needs_modules(*modules: str):  # noqa: ANN201 - a decorator
    """Declare on a part's factory the optional modules it imports when built (checked before the run folder is
    touched by :func:`fedbench.schema.check_tree`)."""
    def declare(fn):  # noqa: ANN001, ANN202
        fn.needs_modules = modules
        return fn
    return declare
