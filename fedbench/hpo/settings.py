"""The ``hpo`` node of a search preset (``conf/hpo/<name>.yaml``), checked before any trial runs.

Every field has a default except ``params``; unknown fields, bad types and impossible combinations
(pruning a multi-objective study, CMA-ES over a categorical, a grid over a continuous range) raise
:class:`~fedbench.errors.ConfigError` naming the field and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from fedbench.errors import ConfigError, require, require_choice
from fedbench.extras import check_available

SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
PRUNERS = ("median", "successive_halving", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")
PARAM_TYPES = ("float", "int", "categorical")
# summary.json fields that make sense as objectives (``epsilon`` once a privacy mechanism is on)
OBJECTIVES = ("best_accuracy", "final_accuracy", "final_loss", "rounds_to_target", "total_bytes_up",
              "total_bytes_down", "total_messages_up", "total_wall_s", "total_sim_round_s", "total_compute_s",
              "total_comm_sim_s", "epsilon", "compression_ratio")


@dataclass(frozen=True)
class Param:
    """One searched config key: ``float``/``int`` over [low, high] (``log``, ``step``) or ``categorical``."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def grid(self) -> list[Any]:
        """The finite values the grid sampler walks (categorical choices, or low..high by step)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.step is None:
            raise ConfigError(f"hpo.params.{self.key}: sampler=grid needs finite values: give the {self.type} range a "
                              "`step`, or make it `type: categorical` with `choices`")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        values = [self.low + i * self.step for i in range(count)]
        return [int(round(v)) for v in values] if self.type == "int" else [round(v, 12) for v in values]


@dataclass(frozen=True)
class Objective:
    """A ``summary.json`` field and its direction; ``if_missing`` replaces a null (e.g. target never reached)."""

    metric: str
    direction: str = "maximize"
    if_missing: float | None = None


@dataclass(frozen=True)
class HpoSettings:
    """The parsed ``hpo`` node (see ``conf/hpo/fedavg_lr_fraction.yaml`` for a documented example)."""

    name: str
    params: tuple[Param, ...]
    objectives: tuple[Objective, ...] = (Objective("best_accuracy"),)
    sampler: str = "tpe"
    pruner: str = "median"
    prune_on: str = "test_accuracy"          # the metrics.csv column reported to the pruner each round
    prune_direction: str = "maximize"
    n_startup_trials: int = 4                 # trials before the sampler models and the pruner prunes
    n_warmup_rounds: int = 2                  # rounds of a trial before it may be pruned
    n_trials: int = 20                        # finished (complete + pruned + failed) trials the study aims for
    timeout: float | None = None              # seconds after which a worker starts no new trial
    workers: int = 1                          # parallel workers (a submitit array when > 1)
    dir: str | None = None                    # the study folder (default outputs/hpo/<date>_<name>)
    storage: str | None = None                # null: a JournalStorage file in the study folder; or an RDB URL
    heartbeat_s: float = 10.0                 # a running trial's heartbeat period
    grace_s: float = 60.0                     # a running trial without heartbeat this long was lost: failed, retried
    max_retry: int = 2                        # retries of a lost trial (RetryFailedTrialCallback)
    seed: int | None = None                   # the sampler's seed (default: the config's seed)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    def identity(self) -> dict[str, Any]:
        """What must stay equal for a rerun to continue the same study (not n_trials, timeout, workers)."""
        return {"params": [vars(p) | {"choices": list(p.choices)} for p in self.params],
                "objectives": [vars(o) for o in self.objectives], "sampler": self.sampler, "pruner": self.pruner,
                "prune_on": self.prune_on}


def parse(node: Mapping[str, Any], name: str) -> HpoSettings:
    """Check and parse the ``hpo`` node; ``name`` is the preset's name (``+hpo=<name>``)."""
    known = {f.name for f in fields(HpoSettings)}
    unknown = sorted(set(node) - known)
    if unknown:
        raise ConfigError(f"hpo.{unknown[0]} is not an hpo setting; settings: {sorted(known - {'name'})}")
    if not node.get("params"):
        raise ConfigError("hpo.params must name at least one config key to search, e.g. "
                          "`lr: {type: float, low: 0.01, high: 1.0, log: true}`")
    values = {k: v for k, v in node.items() if k not in ("params", "objectives") and v is not None}
    settings = HpoSettings(name=str(node.get("name") or name),
                           params=tuple(_param(k, v) for k, v in node["params"].items()),
                           objectives=tuple(_objective(i, o) for i, o in enumerate(node.get("objectives")
                                                                                   or [{"metric": "best_accuracy"}])),
                           **{k: v for k, v in values.items() if k != "name"})
    _check(settings)
    return settings


def _param(key: str, spec: Any) -> Param:
    where = f"hpo.params.{key}"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a mapping like {{type: float, low: 0.01, high: 1, log: true}} or "
                          f"{{type: categorical, choices: [...]}} (got {spec!r})")
    allowed = {"type", "low", "high", "log", "step", "choices"}
    extra = sorted(set(spec) - allowed)
    require(not extra, f"{where}", f"a mapping with keys from {sorted(allowed)}", extra)
    kind = spec.get("type", "categorical" if "choices" in spec else "float")
    require_choice(kind, f"{where}.type", PARAM_TYPES)
    if kind == "categorical":
        choices = spec.get("choices")
        require(isinstance(choices, (list, tuple)) and len(choices) >= 1, f"{where}.choices", "a non-empty list", choices)
        return Param(key, kind, choices=tuple(choices))
    low, high = spec.get("low"), spec.get("high")
    for bound, value in (("low", low), ("high", high)):
        require(isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}.{bound}", "a number", value)
    require(low < high, f"{where}.high", f"greater than low={low}", high)
    log = bool(spec.get("log", False))
    require(not log or low > 0, f"{where}.low", "> 0 when log: true", low)
    step = spec.get("step")
    require(step is None or (isinstance(step, (int, float)) and step > 0), f"{where}.step", "a positive number", step)
    require(not (log and step is not None), f"{where}", "either log: true or a step, not both", spec)
    if kind == "int":
        require(float(low).is_integer() and float(high).is_integer(), f"{where}", "integer low and high for type int",
                (low, high))
    return Param(key, kind, float(low) if kind == "float" else int(low), float(high) if kind == "float" else int(high),
                 log, step)


def _objective(index: int, spec: Any) -> Objective:
    where = f"hpo.objectives[{index}]"
    if isinstance(spec, str):
        spec = {"metric": spec}
    require(isinstance(spec, Mapping) and "metric" in spec, where, "{metric: <summary.json field>, direction: "
            "maximize|minimize}", spec)
    extra = sorted(set(spec) - {"metric", "direction", "if_missing"})
    require(not extra, where, "a mapping with keys metric, direction, if_missing", extra)
    require_choice(spec["metric"], f"{where}.metric", OBJECTIVES)
    direction = spec.get("direction", "minimize" if spec["metric"].startswith(("total_", "rounds_", "final_loss",
                                                                                 "epsilon")) else "maximize")
    require_choice(direction, f"{where}.direction", DIRECTIONS)
    return Objective(spec["metric"], direction, spec.get("if_missing"))


def _check(s: HpoSettings) -> None:
    require_choice(s.sampler, "hpo.sampler", SAMPLERS)
    require_choice(s.pruner, "hpo.pruner", PRUNERS)
    require_choice(s.prune_direction, "hpo.prune_direction", DIRECTIONS)
    for name in ("n_trials", "workers"):
        value = getattr(s, name)
        require(isinstance(value, int) and value >= 1, f"hpo.{name}", "an integer >= 1", value)
    require(isinstance(s.max_retry, int) and s.max_retry >= 0, "hpo.max_retry", "an integer >= 0", s.max_retry)
    require(s.timeout is None or s.timeout > 0, "hpo.timeout", "a positive number of seconds or null", s.timeout)
    require(s.heartbeat_s > 0, "hpo.heartbeat_s", "a positive number of seconds", s.heartbeat_s)
    require(s.grace_s > 2 * s.heartbeat_s, "hpo.grace_s", f"more than two heartbeats (> {2 * s.heartbeat_s})", s.grace_s)
    metrics = [o.metric for o in s.objectives]
    require(len(set(metrics)) == len(metrics), "hpo.objectives", "distinct metrics", metrics)
    if s.multi_objective and s.pruner != "none":
        raise ConfigError(f"hpo.pruner={s.pruner} cannot prune a multi-objective study (Optuna's pruners compare one "
                          "value per round); set hpo.pruner=none or keep one objective")
    if s.sampler == "cmaes":
        if s.multi_objective:
            raise ConfigError("hpo.sampler=cmaes is single-objective; use nsga2 or tpe for several objectives")
        categorical = [p.key for p in s.params if p.type == "categorical"]
        if categorical:
            raise ConfigError(f"hpo.sampler=cmaes searches numbers only; {categorical} are categorical "
                              "(use tpe, random or grid)")
        check_available("cmaes", "hpo.sampler=cmaes")
    if s.sampler == "grid":
        for p in s.params:
            p.grid()  # raises for a continuous range
