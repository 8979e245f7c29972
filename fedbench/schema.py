"""Types of every config group's options, checked before anything is built.

Each group option names its factory (``_target_``); the factory's signature is the schema: a key the
factory does not take is refused (a typo), and a value whose type does not fit the parameter's
annotation (``partitioner.alpha=abc`` for ``alpha: float``) is refused with the field and the type
expected. Ranges stay in the factories' own checks. One source of truth: the code that uses the
option declares its type once.
"""

from __future__ import annotations

import inspect
import logging
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from fedbench.errors import ConfigError
from fedbench.extras import check_available

HYDRA_KEYS = {"_target_", "_partial_", "_args_", "_recursive_", "_convert_"}
_EVAL_NS = {**vars(typing), "Sequence": Sequence, "Mapping": Mapping, "Callable": Callable}


def _annotation(fn: Callable, param: inspect.Parameter) -> Any:
    """The parameter's annotation as an object (postponed string annotations evaluated), or Any."""
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        return Any
    if isinstance(ann, str):
        try:
            return eval(ann, {**_EVAL_NS, **getattr(fn, "__globals__", {})})  # noqa: S307 - the project's own annotations
        except Exception:  # a name only imported for type checkers: leave it unchecked
            return Any
    return ann


def matches(value: Any, ann: Any) -> bool:
    """Whether a config value fits a (simple) annotation; unknown annotations accept anything."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if ann is Any or ann is inspect.Parameter.empty:
        return True
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if ann is type(None) or ann is None:
        return value is None
    if origin is Literal:
        return value in args
    if ann is bool:
        return isinstance(value, bool)
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if ann is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ann is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence, typing.Sequence) or ann in (list, tuple):
        if not isinstance(value, (list, tuple, ListConfig)):
            return False
        inner = args[0] if args else Any  # list[int], Sequence[int], tuple[int, ...]
        return all(matches(v, inner) for v in value)
    if origin in (dict, Mapping) or ann is dict:
        return isinstance(value, (dict, DictConfig))
    return True  # classes (a nested part built by Hydra), callables, ...


def describe(ann: Any) -> str:
    """``int | None`` -> "an integer or null"."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if ann is type(None) or ann is None:
        return "null"
    if origin is Literal:
        return f"one of {list(args)}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if ann in names:
        return names[ann]
    if origin in (list, tuple, Sequence, typing.Sequence) or ann in (list, tuple):
        inner = describe(args[0]) if args else "values"
        return f"a list of {inner.removeprefix('an ').removeprefix('a ')}s" if args else "a list"
    return getattr(ann, "__name__", str(ann))


def check_tree(node: DictConfig, name: str) -> None:
    """:func:`check_node` on ``node`` and every nested part in it, and each ``_target_`` importable: the loggers and
    ``callbacks`` are checked this way before the run folder is touched (they are built inside it)."""
    if not isinstance(node, DictConfig):
        return
    target = node.get("_target_")
    if isinstance(target, str):
        quiet = logging.getLogger("hydra.utils")
        level, quiet.level = quiet.level, logging.CRITICAL  # Hydra logs the failure itself; one line is ours
        try:
            factory = get_object(target)
        except Exception as err:  # noqa: BLE001 - any import failure: one line naming the field
            cause = err.__cause__ or err
            first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            raise ConfigError(f"{name}._target_ cannot be imported ({target!r}: {type(cause).__name__}: {first})") from None
        finally:
            quiet.level = level
        for module in getattr(factory, "needs_modules", ()):
            check_available(module, f"{name} ({target})")
        check_node(node, name)
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            check_tree(child, f"{name}.{key}")


def check_node(node: DictConfig, name: str | None = None) -> None:
    """Refuse keys the node's ``_target_`` does not take and values of the wrong type (see the module
    docstring); nested parts (dicts with their own ``_target_``) are checked when they are built."""
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if not isinstance(target, str):
        return
    name = name or node._get_full_key("") or "config"
    try:
        fn = get_object(target)
        sig = inspect.signature(fn)
    except Exception:  # not importable here: instantiate reports it
        return
    params = sig.parameters
    open_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    short = target.rsplit(".", 1)[-1]
    for key in node:
        if key in HYDRA_KEYS:
            continue
        if key not in params:
            if open_kwargs:
                continue
            allowed = [k for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            raise ConfigError(f"{name}.{key} is not an option of {name} ({short}); its options: {allowed}")
        raw = node._get_node(key)
        if isinstance(raw, DictConfig) and "_target_" in raw:
            continue
        value = OmegaConf.to_container(raw, resolve=True) if isinstance(raw, (DictConfig, ListConfig)) else node[key]
        ann = _annotation(fn, params[key])
        if not matches(value, ann):
            raise ConfigError(f"{name}.{key} must be {describe(ann)} (got {value!r})")
