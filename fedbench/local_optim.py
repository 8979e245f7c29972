"""What a LightningModule's ``configure_optimizers`` said, in the form fedbench's local loop uses.

Every return form Lightning documents is accepted: an optimizer; a list or tuple of them; a
``([optimizers], [schedulers])`` pair; a dict ``{"optimizer", "lr_scheduler"}`` whose scheduler is
a scheduler or a config dict (``scheduler``, ``interval``, ``frequency``); or a list of such dicts.
fedbench's loop drives one optimizer per client, so it refuses, with a clear error, what it cannot
honour: several optimizers, manual optimization, ``ReduceLROnPlateau`` (needs a monitored metric).

Scheduler intervals: ``step`` and ``epoch`` (Lightning's; the default is ``epoch``) count the
client's local steps and local epochs, and restart every round (the client builds a fresh
optimizer from the broadcast model); fedbench adds ``round``: the rate steps once per
communication round, so round r trains with the rate the scheduler gives after r - 1 steps.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import torch
from lightning import LightningModule

from fedbench.errors import ConfigError


@dataclass
class LocalOptimization:
    """The optimizer, its scheduler (or None), when the scheduler steps, and every how many."""

    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    interval: str = "epoch"
    frequency: int = 1


def _scheduler_config(sched: Any) -> tuple[Any, str, int]:
    if isinstance(sched, dict):
        interval, frequency = sched.get("interval", "epoch"), sched.get("frequency", 1)
        if interval not in ("step", "epoch", "round"):
            raise ConfigError(f"configure_optimizers: lr_scheduler interval must be one of ['step', 'epoch', 'round'] "
                              f"(got {interval!r})")
        sched = sched["scheduler"]
    else:
        interval, frequency = "epoch", 1
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ConfigError("configure_optimizers: ReduceLROnPlateau needs a monitored metric, which fedbench's local "
                          "loop does not have; use a schedule of steps, epochs or rounds (StepLR, CosineAnnealingLR, ...)")
    return sched, interval, frequency


def _single(items: Any, what: str) -> Any:
    items = list(items)
    if len(items) != 1:
        raise ConfigError(f"configure_optimizers returned {len(items)} {what}; fedbench's local loop drives exactly one "
                          "optimizer (and at most one scheduler) per client")
    return items[0]


def parse(returned: Any) -> LocalOptimization:
    """Normalise ``configure_optimizers()``'s return value (see the module docstring)."""
    if isinstance(returned, torch.optim.Optimizer):
        return LocalOptimization(returned)
    if isinstance(returned, dict):
        if "lr_scheduler" not in returned:
            return LocalOptimization(returned["optimizer"])
        return LocalOptimization(returned["optimizer"], *_scheduler_config(returned["lr_scheduler"]))
    if isinstance(returned, (list, tuple)) and len(returned) == 2 and all(isinstance(p, (list, tuple)) for p in returned):
        opt = _single(returned[0], "optimizers")
        scheds = list(returned[1])
        return LocalOptimization(opt, *_scheduler_config(_single(scheds, "schedulers"))) if scheds else LocalOptimization(opt)
    if isinstance(returned, (list, tuple)) and returned:
        return parse(_single(returned, "optimizers"))
    raise ConfigError(f"configure_optimizers must return an optimizer (or one of Lightning's forms); got {returned!r}")


def configure(task: LightningModule) -> LocalOptimization:
    """Call the task's ``configure_optimizers`` and parse it; refuse manual optimization."""
    if not task.automatic_optimization:
        raise ConfigError("the task uses manual optimization (automatic_optimization = False); fedbench's local loop "
                          "drives the optimizer itself")
    return parse(task.configure_optimizers())


_ROUND_RATES: "weakref.WeakKeyDictionary[LightningModule, tuple[LocalOptimization, int]]" = weakref.WeakKeyDictionary()


def round_rates(task: LightningModule, round_: int) -> list[float]:
    """The param groups' learning rates for ``round_`` under an ``interval="round"`` scheduler:
    one reference scheduler per task, stepped forward once per round (rebuilt if asked for an
    earlier round), so clients cost O(1) each however late the round."""
    ref, done = _ROUND_RATES.get(task, (None, 0))
    target = (round_ - 1) // (ref.frequency if ref else 1)
    if ref is None or done > target:
        ref, done = configure(task), 0
        target = (round_ - 1) // ref.frequency
    with warnings.catch_warnings():  # stepping a schedule without optimizer.step() is the point here
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(target - done):
            ref.scheduler.step()
    _ROUND_RATES[task] = (ref, target)
    return [group["lr"] for group in ref.optimizer.param_groups]
