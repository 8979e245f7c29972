"""Checks of the flat top-level knobs, run before any work starts and before torch is imported (the command line
answers a typo in about a second: :mod:`fedbench.precheck`).

A number must be finite and of a sane size (``lr=inf`` or a 300-digit literal is refused, not trained on); a value of
the wrong type says which type was expected. Component options (``algorithm.*``, ``partitioner.*``, ``dataset.*``)
are checked by their own factories when ``run`` builds them, which also happens before the first round; whether the
named device exists on this machine is checked by ``run`` (:func:`fedbench.device.check_device`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from fedbench import allocator
from fedbench.errors import ConfigError, require, require_choice

LARGEST = 1e12  # a flat knob beyond this size is a typo, not a setting
SAMPLING_CHOICES = ("auto", "fixed", "poisson")  # fedbench.sampling's client_sampling
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _kind(v: Any) -> str:
    return "null" if v is None else {str: "a string", bool: "true/false", list: "a list", dict: "a mapping"}.get(
        type(v), type(v).__name__)


def number(cfg: Mapping[str, Any], key: str, allowed: str, ok, integer: bool = False, prefix: str = "") -> None:
    """``cfg[key]`` (named ``prefix + key``) must be a finite number (an integer with ``integer``) of a sane size for
    which ``ok`` holds."""
    v, field = cfg[key] if key in cfg else None, prefix + key
    kind = "an integer" if integer else "a number"
    if not (is_int(v) if integer else is_num(v)):
        what = "not a whole number" if integer and is_num(v) else _kind(v)
        raise ConfigError(f"{field} must be {kind} {allowed} (got {v!r}: {what})")
    if not math.isfinite(v) or abs(v) > LARGEST:
        shown = f"a {len(str(abs(int(v))))}-digit number" if is_int(v) else repr(v)
        raise ConfigError(f"{field} must be a finite {kind[2:] if integer else 'number'} {allowed}, at most "
                          f"{LARGEST:.0e} in size (got {shown})")
    require(ok(v), field, f"{kind} {allowed}" if integer else allowed, v)


def check_device_name(spec: Any, field: str = "device") -> None:
    """The device's spelling (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``); whether it exists is run's check."""
    require(isinstance(spec, str) and (spec in ("auto", "cpu", "cuda", "mps") or
                                       (spec.startswith("cuda:") and spec[5:].isdigit())), field, DEVICE_CHOICES, spec)


def validate_knobs(cfg: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the first bad field, its allowed range and, for a wrong type, the type expected."""
    number(cfg, "seed", ">= 0", lambda v: v >= 0, integer=True)
    check_device_name(cfg.get("device", "auto"))
    number(cfg, "rounds", ">= 1", lambda v: v >= 1, integer=True)
    number(cfg, "num_clients", ">= 1", lambda v: v >= 1, integer=True)
    number(cfg, "client_fraction", "in (0, 1]", lambda v: 0 < v <= 1)
    require_choice(cfg.get("client_sampling", "auto"), "client_sampling", SAMPLING_CHOICES)
    number(cfg, "local_epochs", ">= 1", lambda v: v >= 1, integer=True)
    if cfg["batch_size"] is not None:
        number(cfg, "batch_size", ">= 1 or null (full local batch)", lambda v: v >= 1, integer=True)
    number(cfg, "lr", "> 0", lambda v: v > 0)
    number(cfg, "momentum", "in [0, 1)", lambda v: 0 <= v < 1)
    number(cfg, "weight_decay", ">= 0", lambda v: v >= 0)
    number(cfg, "eval_every", ">= 1", lambda v: v >= 1, integer=True)
    e, em = cfg["local_epochs"], cfg["local_epochs_max"]
    if em is not None:
        number(cfg, "local_epochs_max", f">= local_epochs ({e}), or null", lambda v: v >= e, integer=True)
    number(cfg, "straggler_fraction", "in [0, 1]", lambda v: 0 <= v <= 1)
    if "dropout" in cfg:
        number(cfg, "dropout", "in [0, 1)", lambda v: 0 <= v < 1)
    number(cfg, "checkpoint_every", ">= 0 (0 = never)", lambda v: v >= 0, integer=True)
    require_choice(cfg.get("allocator", allocator.DEFAULT), "allocator", allocator.CHOICES)
    if cfg["target_accuracy"] is not None:
        number(cfg, "target_accuracy", "in [0, 1], or null", lambda v: 0 <= v <= 1)
    if cfg.get("diverge_loss") is not None:
        number(cfg, "diverge_loss", "> 0, or null", lambda v: v > 0)
    st = cfg["stop_at_target"]
    require(isinstance(st, bool), "stop_at_target", "true or false", st)
    require(not st or cfg["target_accuracy"] is not None, "stop_at_target", "false when target_accuracy is null", st)
    _client_speed(cfg)
    if isinstance(cfg.get("pipeline"), Mapping):
        check_pipeline_sizes(cfg["pipeline"], str(cfg.get("paradigm")))


def _client_speed(cfg: Mapping[str, Any]) -> None:
    sp = cfg["client_speed"]
    if sp.get("step_time_s") is not None:
        number({"client_speed.step_time_s": sp["step_time_s"]}, "client_speed.step_time_s", "> 0, or null (measured)",
               lambda v: v > 0)
    number({"client_speed.sigma": sp["sigma"]}, "client_speed.sigma", ">= 0", lambda v: v >= 0)
    f = sp["factors"]
    require(f is None or (len(f) == cfg["num_clients"] and all(is_num(v) and 0 < v < LARGEST for v in f)),
            "client_speed.factors", f"null or a list of num_clients ({cfg['num_clients']}) numbers > 0", f)


def validate_sizes(num_clients: int, num_samples: int) -> None:
    """``num_clients`` cannot exceed the training samples (every client needs data)."""
    require(num_clients <= num_samples, "num_clients", f"<= the {num_samples} training samples", num_clients)


def check_pipeline_sizes(p: Mapping[str, Any], paradigm: str) -> None:
    """``pipeline.stages``/``microbatches``/``replicas`` (checked before ``backend.workers``, which is derived from them)."""
    for key in ("stages", "microbatches", "replicas"):
        number(p, key, ">= 1", lambda v: v >= 1, integer=True, prefix="pipeline.")
    require(p["stages"] >= 2 or paradigm == "hybrid", "pipeline.stages", "an integer >= 2 for paradigm=pipeline",
            p["stages"])
