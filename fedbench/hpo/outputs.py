"""What a search leaves in its study folder: ``trials.csv``, ``best.yaml``, plots and ``hpo_summary.json``.

``best.yaml`` holds the best trial's overrides and the command that reruns it as a plain fedbench run
(for several objectives: every trial of the Pareto front, and ``pareto_front.csv``). The plots are
Optuna's matplotlib ones: optimization history, parameter importances (fANOVA) and, for several
objectives, the Pareto front. ``hpo_summary.json`` is what the systems report's HPO section reads.
"""

from __future__ import annotations

import csv
import json
import logging
import shlex
import warnings
from pathlib import Path
from typing import Any, Sequence

import optuna
import yaml
from optuna.trial import TrialState

from fedbench.hpo.settings import HpoSettings

log = logging.getLogger("fedbench")
SUMMARY = "hpo_summary.json"
PLOTS = {"history": "optimization_history.png", "importance": "param_importances.png", "pareto": "pareto_front.png"}


def rerun_command(overrides: Sequence[str], trial: optuna.trial.FrozenTrial) -> str:
    """The plain ``python -m fedbench`` command that reruns ``trial`` (in a new run folder)."""
    return "uv run python -m fedbench " + " ".join(shlex.quote(o) for o in [*overrides, *trial.user_attrs.get("overrides", [])])


def trial_rows(study: optuna.Study, settings: HpoSettings) -> list[dict[str, Any]]:
    """One row per trial: number, state, objective values, parameters, run folder, rounds, seconds, why."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": t.number, "state": t.state.name.lower()}
        for i, obj in enumerate(settings.objectives):
            row[obj.metric] = t.values[i] if t.values else None
        row.update({f"param_{p.key}": t.params.get(p.key) for p in settings.params})
        retry = optuna.storages.RetryFailedTrialCallback.retried_trial_number(t)
        row.update(run_dir=t.user_attrs.get("run_dir"), rounds=t.user_attrs.get("rounds"),
                   seconds=t.user_attrs.get("seconds"), worker=t.user_attrs.get("worker"), retry_of=retry,
                   reason=t.user_attrs.get("reason", ""))
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _entry(t: optuna.trial.FrozenTrial, settings: HpoSettings, overrides: Sequence[str]) -> dict[str, Any]:
    return {"trial": t.number, "values": {o.metric: v for o, v in zip(settings.objectives, t.values)},
            "params": dict(t.params), "overrides": list(t.user_attrs.get("overrides", [])),
            "run_dir": t.user_attrs.get("run_dir"), "command": rerun_command(overrides, t)}


def best(study: optuna.Study, settings: HpoSettings, overrides: Sequence[str]) -> dict[str, Any]:
    """``best.yaml``'s content (empty ``best`` when no trial completed)."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    head = {"study": study.study_name, "objectives": [vars(o) for o in settings.objectives],
            "base_overrides": list(overrides)}
    if not complete:
        return {**head, "best": None}
    if settings.multi_objective:
        return {**head, "pareto_front": [_entry(t, settings, overrides) for t in study.best_trials]}
    return {**head, "best": _entry(study.best_trial, settings, overrides)}


def plots(study: optuna.Study, settings: HpoSettings, folder: Path) -> dict[str, str]:
    """Write the PNGs that the study's trials allow; each one skipped says why in the log."""
    import matplotlib

    if "inline" not in str(matplotlib.rcParams["backend"]):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    names = [o.metric for o in settings.objectives]
    made: dict[str, str] = {}
    jobs = {"history": lambda: ovm.plot_optimization_history(study, target=(lambda t: t.values[0]) if settings.multi_objective else None,
                                                             target_name=names[0])}
    if len({tuple(sorted(t.params.items())) for t in complete}) >= 2 and settings.params:
        jobs["importance"] = lambda: ovm.plot_param_importances(study, target=(lambda t: t.values[0]) if settings.multi_objective else None,
                                                                target_name=names[0])
    if settings.multi_objective and len(names) <= 3:
        jobs["pareto"] = lambda: ovm.plot_pareto_front(study, target_names=names)
    if not complete:
        log.warning("no trial completed: no plots")
        return made
    for key, draw in jobs.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                ax = draw()
            fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
            fig.tight_layout()
            fig.savefig(folder / PLOTS[key], dpi=120)
            plt.close(fig)
            made[key] = PLOTS[key]
        except Exception as err:  # noqa: BLE001 - e.g. importances need parameters that varied
            log.warning("plot %s skipped: %s", PLOTS[key], err)
    return made


def write_all(study: optuna.Study, settings: HpoSettings, overrides: Sequence[str], folder: Path) -> dict[str, Any]:
    """Write every output of the study folder; return ``hpo_summary.json``'s content."""
    rows = trial_rows(study, settings)
    _write_csv(folder / "trials.csv", rows)
    chosen = best(study, settings, overrides)
    (folder / "best.yaml").write_text(yaml.safe_dump(chosen, sort_keys=False, width=200))
    if settings.multi_objective and chosen.get("pareto_front"):
        _write_csv(folder / "pareto_front.csv", [{"trial": e["trial"], **e["values"], **e["params"]}
                                                 for e in chosen["pareto_front"]])
    made = plots(study, settings, folder)
    counts = {s: sum(1 for r in rows if r["state"] == s) for s in ("complete", "pruned", "fail", "running", "waiting")}
    summary = {"name": settings.name, "study": study.study_name, "sampler": settings.sampler, "pruner": settings.pruner,
               "objectives": [vars(o) for o in settings.objectives], "params": [p.key for p in settings.params],
               "trials": counts, "best": chosen.get("best"), "pareto_front": chosen.get("pareto_front"),
               "plots": made}
    (folder / SUMMARY).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary
