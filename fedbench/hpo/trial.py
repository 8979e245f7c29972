"""One trial = one normal fedbench run in ``<study>/trials/<number>``, its rounds reported to the pruner.

The trial's config is composed exactly as ``python -m fedbench <study overrides> <trial overrides>`` would
compose it, so the trial folder is an ordinary run folder (reports, W&B, resume work on it), and
``best.yaml``'s command reruns the best trial. A retried trial (its worker was lost) runs in the folder
of the trial it retries and resumes from that run's checkpoint.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import optuna
from omegaconf import DictConfig, open_dict
from optuna.storages import RetryFailedTrialCallback

from fedbench.callbacks import Callback
from fedbench.errors import ConfigError
from fedbench.hpo.settings import HpoSettings, Param

log = logging.getLogger("fedbench")
HEARTBEAT = "heartbeat"
_REPORTERS: dict[str, Callback] = {}  # run folder -> the pruning callback of the trial running there


def suggest(trial: optuna.Trial, params: Sequence[Param]) -> dict[str, Any]:
    """The trial's values for the searched keys (fixed values of an enqueued or retried trial are kept)."""
    values = {}
    for p in params:
        if p.type == "categorical":
            values[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        elif p.type == "int":
            values[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            values[p.key] = trial.suggest_float(p.key, p.low, p.high, step=p.step, log=p.log)
    return values


def as_overrides(values: Mapping[str, Any]) -> list[str]:
    """``{"lr": 0.1, "algorithm": "fedprox"}`` -> ``["lr=0.1", "algorithm=fedprox"]`` (Hydra override syntax)."""
    def text(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, float):
            return repr(float(f"{v:.10g}"))
        return str(v)

    return [f"{k}={text(v)}" for k, v in values.items()]


def run_folder(study_folder: Path, trial: optuna.Trial | optuna.trial.FrozenTrial) -> Path:
    """``<study>/trials/<number>``; a retry runs in the folder of the first trial it retries."""
    frozen = trial if isinstance(trial, optuna.trial.FrozenTrial) else trial.storage.get_trial(trial._trial_id)
    history = RetryFailedTrialCallback.retry_history(frozen)
    return study_folder / "trials" / f"{history[0] if history else trial.number:04d}"


def attach(output_dir: str, config: dict[str, Any], history: list[dict[str, Any]]) -> Callback:
    """The ``callbacks.hpo_pruning`` factory: the pruning reporter of the trial that runs in ``output_dir``."""
    reporter = _REPORTERS.get(str(Path(output_dir).resolve()))
    if reporter is None:  # the trial's folder rerun by hand, outside the study: nothing to report to
        return Callback()
    for row in history:  # a resumed retry: tell the pruner the rounds already done
        reporter.on_round_end(row, {}, {})
    return reporter


def reporter(trial: optuna.Trial, settings: HpoSettings, pruned: dict[str, Any]) -> Callback:
    """Report ``settings.prune_on`` each evaluated round; ask the run to stop when the pruner says so."""
    sign = 1.0 if settings.prune_direction == settings.objectives[0].direction else -1.0

    def on_round_end(row: dict[str, Any], server: Any, clients: Any) -> bool:
        value = row.get(settings.prune_on)
        if settings.pruner == "none" or value is None or not math.isfinite(float(value)):
            return False
        trial.report(sign * float(value), step=int(row["round"]))
        if trial.should_prune():
            pruned.update(round=int(row["round"]), value=float(value))
            return True
        return False

    return Callback(on_round_end)


@contextmanager
def heartbeat(folder: Path, period_s: float) -> Iterator[None]:
    """Touch ``<folder>/heartbeat`` every ``period_s`` while the trial runs (a lost worker's trial goes stale)."""
    folder.mkdir(parents=True, exist_ok=True)
    beat, stop = folder / HEARTBEAT, threading.Event()

    def loop() -> None:
        while True:
            beat.write_text(f"{time.time()}\n")
            if stop.wait(period_s):
                return

    thread = threading.Thread(target=loop, name="fedbench-hpo-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        beat.unlink(missing_ok=True)


def last_beat(frozen: optuna.trial.FrozenTrial) -> float:
    """When a running trial last showed life: its heartbeat file's mtime, else its start time."""
    folder = frozen.user_attrs.get("run_dir")
    if folder:
        try:
            return (Path(folder) / HEARTBEAT).stat().st_mtime
        except OSError:
            pass
    start = frozen.datetime_start
    return start.timestamp() if start else 0.0


def objective_values(summary: Mapping[str, Any], settings: HpoSettings) -> list[float]:
    """The objectives read from the run's summary; a null without ``if_missing`` raises ValueError saying why."""
    values = []
    for obj in settings.objectives:
        value = summary.get(obj.metric)
        if value is None:
            if obj.if_missing is None:
                raise ValueError(f"summary.json has {obj.metric}=null (e.g. the target was never reached or the "
                                 f"metric does not apply to this run); set if_missing for objective {obj.metric}")
            value = obj.if_missing
        values.append(float(value))
    return values


def trial_config(overrides: Sequence[str], values: Mapping[str, Any], folder: Path) -> DictConfig:
    """The composed config of a trial: the study's overrides, the trial's values and its pruning reporter;
    the ``hpo`` node itself is dropped (a trial is a plain run; ``hpo.n_trials`` may change between reruns). With
    ``logger=[csv,wandb]`` the trials of a study share a W&B group named after the study folder."""
    from fedbench.config import compose

    cfg = compose([*overrides, *as_overrides(values), "+callbacks.hpo_pruning._target_=fedbench.hpo.trial.attach",
                   "+callbacks.hpo_pruning._partial_=true"], folder)
    with open_dict(cfg):
        cfg.pop("hpo", None)
        wandb = cfg.logger.get("wandb")
        if wandb is not None and wandb.get("group") is None:  # a study's trials are one W&B group
            wandb.group = folder.parent.parent.name
    return cfg


def run_trial(trial: optuna.Trial, settings: HpoSettings, overrides: Sequence[str], study_folder: Path) -> dict[str, Any]:
    """Run the trial's fedbench run; return ``{"state", "values", "reason", ...}`` for the study's ``tell``."""
    from fedbench.run import run

    values = suggest(trial, settings.params)
    folder = run_folder(study_folder, trial)
    trial.set_user_attr("run_dir", str(folder))
    trial.set_user_attr("overrides", as_overrides(values))
    pruned: dict[str, Any] = {}
    key = str(folder.resolve())
    _REPORTERS[key] = reporter(trial, settings, pruned)
    started = time.time()
    try:
        cfg = trial_config(overrides, values, folder)
        with heartbeat(folder, settings.heartbeat_s):
            summary = run(cfg).summary
    except ConfigError as err:
        return {"state": "fail", "reason": f"invalid configuration: {err}", "params": values}
    except Exception as err:  # noqa: BLE001 - a failed trial is recorded with why; the study goes on
        log.exception("trial %d failed", trial.number)
        return {"state": "fail", "reason": f"{type(err).__name__}: {err}", "params": values}
    finally:
        _REPORTERS.pop(key, None)
    result = {"params": values, "seconds": time.time() - started, "rounds": summary.get("rounds_completed"),
              "diverged": bool(summary.get("diverged"))}
    if pruned:
        return {**result, "state": "pruned", "reason": f"pruned by the {settings.pruner} pruner after round "
                f"{pruned['round']} ({settings.prune_on} {pruned['value']:.4g})"}
    try:
        return {**result, "state": "complete", "values": objective_values(summary, settings),
                "reason": "diverged (values from its records)" if result["diverged"] else ""}
    except ValueError as err:
        return {**result, "state": "fail", "reason": str(err)}
