"""The one error type fedbench raises for bad user input."""

from __future__ import annotations

from typing import Any, Iterable


class ConfigError(ValueError):
    """A config value is invalid. The message names the field and what is allowed."""


class SetupError(RuntimeError):
    """The config is valid but this machine cannot provide what it needs (e.g. FedML's isolated environment
    cannot be built). The message says what is missing and how to get it."""


def require(ok: bool, field: str, allowed: str, got: Any) -> None:
    """Raise ConfigError ``"<field> must be <allowed> (got <got>)"`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{field} must be {allowed} (got {got!r})")


def require_choice(value: Any, field: str, choices: Iterable[Any]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    choices = list(choices)
    require(value in choices, field, f"one of {choices}", value)
