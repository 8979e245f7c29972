"""Optional dependencies: import one, or stop with the one line that says how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from fedbench.errors import SetupError

EXTRAS = {"datasets": "hf", "flwr_datasets": "hf"}  # module -> the extra of pyproject.toml that installs it


def require_module(module: str, needed_for: str) -> ModuleType:
    """``import module``, or a :class:`~fedbench.errors.SetupError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = EXTRAS.get(module.split(".")[0], "hf")
        raise SetupError(f"{needed_for} needs the optional extra '{extra}' ({module} is not installed): run "
                         f"`uv sync --extra {extra}` (or `pip install 'fedbench[{extra}]'`)") from err
