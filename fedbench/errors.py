"""The one error type fedbench raises for bad user input."""

from __future__ import annotations

from typing import Any, Iterable


class ConfigError(ValueError):
    """A config value is invalid. The message names the field and what is allowed."""


class SetupError(RuntimeError):
    """The config is valid but this machine cannot provide what it needs (e.g. FedML's isolated environment
    cannot be built). The message says what is missing and how to get it."""


class RunFolderError(ConfigError):
    """A run folder cannot be used as it is: unwritable, or a record in it is damaged. The message names the file
    and what to do (``resume=none`` or a new folder); nothing in the folder is changed."""


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, shortened with its length when it is long (a pasted 300-character value)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 20]}... ({len(str(value))} characters)"


def require(ok: bool, field: str, allowed: str, got: Any) -> None:
    """Raise ConfigError ``"<field> must be <allowed> (got <got>)"`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{field} must be {allowed} (got {shown(got)})")


def require_choice(value: Any, field: str, choices: Iterable[Any]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    choices = list(choices)
    require(value in choices, field, f"one of {choices}", value)
