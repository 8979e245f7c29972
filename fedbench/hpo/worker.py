"""A search worker: ask the shared study for a trial, run it, tell the result, until the budget is spent.

Any number of workers (processes, SLURM array tasks, reruns of the same command) share one study. Each
worker, before each trial, fails the trials whose worker was lost (no heartbeat for ``hpo.grace_s``) and
has Optuna's :class:`~optuna.storages.RetryFailedTrialCallback` enqueue them again with the same
parameters (up to ``hpo.max_retry`` times); the retry resumes the lost run from its checkpoint.
Optuna 5's JournalStorage has no heartbeats of its own, so fedbench keeps one mechanism for every
storage: a heartbeat file in the trial's run folder.

The budget: ``hpo.n_trials`` trials that are complete, pruned, running, waiting, or failed and not
retried. Parallel workers may together start up to ``workers - 1`` trials more when they ask at the
same moment. A worker that has nothing left to start waits for the running trials to finish (or to be
found lost and retried), so that a rerun after a crash leaves no trial behind.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import TrialState

from fedbench.hpo import study as studies
from fedbench.hpo.study import StudySpec
from fedbench.hpo.trial import last_beat, run_trial

log = logging.getLogger("fedbench")


def retried_numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of the failed trials that have been enqueued again."""
    return {n for t in trials for n in RetryFailedTrialCallback.retry_history(t)}


def claimed(trials: list[optuna.trial.FrozenTrial]) -> int:
    """How much of ``n_trials`` is spent: every trial except the failed ones that were retried."""
    retried = retried_numbers(trials)
    return sum(1 for t in trials if not (t.state == TrialState.FAIL and t.number in retried))


def fail_lost_trials(study: optuna.Study, storage: optuna.storages.BaseStorage, grace_s: float, max_retry: int) -> list[int]:
    """Fail each running trial without a heartbeat for ``grace_s`` and enqueue its retry; the numbers failed."""
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        silent = time.time() - last_beat(t)
        if silent < grace_s:
            continue
        reason = f"worker lost ({t.user_attrs.get('worker', '?')}): no heartbeat for {silent:.0f} s"
        try:
            storage.set_trial_user_attr(t._trial_id, "reason", reason)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except (UpdateFinishedTrialError, RuntimeError):
            continue  # another worker failed it first (or it just finished)
        frozen = storage.get_trial(t._trial_id)
        if len(RetryFailedTrialCallback.retry_history(frozen)) < max_retry:
            RetryFailedTrialCallback(max_retry=max_retry)(study, frozen)
            log.warning("trial %d: %s; enqueued again (it resumes from its checkpoint)", t.number, reason)
        else:
            log.warning("trial %d: %s; not retried (hpo.max_retry=%d reached)", t.number, reason, max_retry)
        failed.append(t.number)
    return failed


def _budget(spec: StudySpec) -> int:
    size = studies.grid_size(spec.settings)
    return min(spec.settings.n_trials, size) if size else spec.settings.n_trials


def work(spec: StudySpec, index: int = 0) -> dict[str, Any]:
    """Run trials of the shared study until its budget is spent (or ``hpo.timeout``); what this worker did."""
    studies.log_to(sys.stderr)  # a SLURM/submitit worker has no Hydra logging
    settings = spec.settings
    study, storage = studies.load(spec, index)
    folder = Path(spec.folder)
    name = f"{socket.gethostname()}:{os.getpid()}:{index}"
    deadline = time.time() + settings.timeout if settings.timeout else None
    budget, done = _budget(spec), {"complete": 0, "pruned": 0, "fail": 0}
    while True:
        fail_lost_trials(study, storage, settings.grace_s, settings.max_retry)
        trials = study.get_trials(deepcopy=False)
        waiting = any(t.state == TrialState.WAITING for t in trials)
        out_of_time = deadline is not None and time.time() >= deadline
        if out_of_time or (not waiting and claimed(trials) >= budget):
            running = [t.number for t in trials if t.state == TrialState.RUNNING]
            if out_of_time or not running:
                break
            time.sleep(min(settings.heartbeat_s, 5.0))  # running elsewhere: wait for it, or find it lost and retry it
            continue
        trial = study.ask()
        trial.set_user_attr("worker", name)
        result = run_trial(trial, settings, spec.overrides, folder)
        _tell(study, trial, result)
        done[result["state"]] += 1
        _log_trial(study, trial.number, result, name, settings)
    log.info("worker %s: %d complete, %d pruned, %d failed; study has %d trials", name, done["complete"],
             done["pruned"], done["fail"], len(study.trials))
    return {"worker": name, **done}


def _tell(study: optuna.Study, trial: optuna.Trial, result: dict[str, Any]) -> None:
    for key in ("reason", "seconds", "rounds", "diverged"):
        if result.get(key) not in (None, ""):
            trial.set_user_attr(key, result[key])
    state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}[result["state"]]
    study.tell(trial, result.get("values") if state == TrialState.COMPLETE else None, state=state)


def _log_trial(study: optuna.Study, number: int, result: dict[str, Any], worker: str, settings: Any) -> None:
    """One line per trial: its parameters and outcome, ``trial k/N`` finished and an ETA for the rest."""
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result["params"].items())
    what = {"complete": lambda: "-> " + ", ".join(f"{v:.4g}" for v in result["values"]),
            "pruned": lambda: f"pruned ({result['reason']})", "fail": lambda: f"FAILED: {result['reason']}"}
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    best = ""
    if len(study.directions) == 1 and any(t.state == TrialState.COMPLETE for t in finished):
        best = f"; best so far: trial {study.best_trial.number} ({study.best_value:.4g})"
    log.info("trial %d [%s]: %s %s (%.1f s); trial %d/%d finished%s%s", number, worker, params,
             what[result["state"]](), result.get("seconds") or 0.0, len(finished), settings.n_trials,
             eta(finished, settings.n_trials, settings.workers), best)


def eta(finished: list[Any], target: int, workers: int) -> str:
    """``, ETA 3m20s``: the mean time of the finished trials times the trials left, shared by the workers."""
    seconds = [t.user_attrs["seconds"] for t in finished if isinstance(t.user_attrs.get("seconds"), (int, float))]
    left = target - len(finished)
    if not seconds or left <= 0:
        return ""
    total = sum(seconds) / len(seconds) * left / max(1, workers)
    return f", ETA {int(total // 60)}m{int(total % 60):02d}s"
