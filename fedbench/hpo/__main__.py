"""``uv run python -m fedbench.hpo +hpo=<name> [fedbench overrides] [hpo.<setting>=...]``

Composes the config like ``python -m fedbench`` (the preset ``conf/hpo/<name>.yaml`` sets the search
space, objectives, sampler and pruner, and may set the base run), checks everything, then runs the
search: in this process, or with ``hpo.workers=N`` as N submitit workers (``hydra/launcher=submitit_slurm``
for a SLURM array). Rerunning the same command continues the study. Exit status: 0 done, 1 a worker
failed, 2 invalid configuration, 4 an optional extra is missing (cmaes, postgres).
"""

from __future__ import annotations

import datetime
import logging
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict

from fedbench.config import CONF, compose, group_option_errors
from fedbench.dicts import flatten
from fedbench.errors import ConfigError, SetupError
from fedbench.hpo import outputs, study as studies
from fedbench.hpo.settings import HpoSettings, parse
from fedbench.hpo.study import StudySpec, log_to
from fedbench.secrets import mask
from fedbench.validate import validate_knobs

log = logging.getLogger("fedbench")
RUNTIME = ("n_trials", "timeout", "workers", "dir", "storage", "heartbeat_s", "grace_s", "max_retry")


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def presets() -> list[str]:
    """The search presets in ``conf/hpo/``."""
    return sorted(p.stem for p in (CONF / "hpo").glob("*.yaml"))


def _preset(args: Sequence[str]) -> str:
    names = [a.split("=", 1)[1] for a in args if _key(a) == "hpo" and "=" in a]
    if not names:
        raise ConfigError(f"choose a search preset: +hpo=<name>, one of {presets()} (conf/hpo/<name>.yaml)")
    return names[-1]


def trial_overrides(args: Sequence[str]) -> list[str]:
    """The command's overrides that shape each trial's run: not ``hpo.*`` settings, not ``hydra`` ones."""
    return [a for a in args if not _key(a).startswith(("hpo.", "hydra"))]


def _check_params(base: DictConfig, settings: HpoSettings) -> None:
    """Each searched key exists (a setting, or a config group with those options); each end of a range is valid."""
    groups = {p.name for p in CONF.iterdir() if p.is_dir()}
    missing = object()
    for p in settings.params:
        if p.key in groups:
            options = {f.stem for f in (CONF / p.key).glob("*.yaml")}
            bad = [c for c in p.choices if str(c) not in options]
            if p.type != "categorical" or bad:
                raise ConfigError(f"hpo.params.{p.key}: {p.key} is a config group; search it as type: categorical "
                                  f"with choices from {sorted(options)} (got {list(bad) or p.type})")
            continue
        if OmegaConf.select(base, p.key, default=missing) is missing:
            raise ConfigError(f"hpo.params.{p.key}: '{p.key}' is not a key of the composed config (a typo, or a key "
                              "of another option: e.g. algorithm.mu needs algorithm=fedprox in the preset or command)")
        if p.type != "categorical":
            for end in (p.low, p.high):
                probe = OmegaConf.create(OmegaConf.to_container(base))
                OmegaConf.update(probe, p.key, int(end) if p.type == "int" else end, force_add=True)
                try:
                    validate_knobs(probe)
                except ConfigError as err:
                    raise ConfigError(f"hpo.params.{p.key}: the range [{p.low}, {p.high}] holds invalid values: {err}") from err


def prepare(args: Sequence[str]) -> tuple[StudySpec, DictConfig | None]:
    """Compose and check the command; the study spec and the chosen launcher node. Touches only the study folder."""
    bad = [a for a in args if a in ("-m", "--multirun") or a.startswith("-")]
    if bad:
        raise ConfigError(f"python -m fedbench.hpo takes overrides only (got {bad[0]!r}); the search itself runs the "
                          "trials (hpo.workers=N in parallel)")
    name = _preset(args)
    settable = {f"hpo.{f.name}" for f in fields(HpoSettings)}  # every setting, whether the preset sets it or not
    composed = [f"++{a}" if not a.startswith(("+", "~")) and _key(a) in settable else a for a in args]
    try:
        with group_option_errors():
            cfg = compose(composed, output_dir="unused", hydra_config=True)
    except HydraException as err:  # e.g. an override of a key that is not there
        raise ConfigError(f"{err} (to replace a searched key's spec: ~hpo.params.<key> +hpo.params.<key>={{...}})") from err
    settings = parse(OmegaConf.to_container(cfg.hpo, resolve=True), name)
    launcher = cfg.hydra.launcher if "launcher" in cfg.hydra else None
    with open_dict(cfg):
        for key in ("hydra", "hpo", "output_dir"):
            cfg.pop(key, None)
    validate_knobs(cfg)
    _check_params(cfg, settings)
    folder = Path(settings.dir or f"outputs/hpo/{datetime.date.today():%Y-%m-%d}_{settings.name}")
    storage = studies.storage_url(settings, folder)
    overrides = trial_overrides(args)
    spec = StudySpec(settings=settings, overrides=tuple(overrides), folder=str(folder), storage=storage,
                     study_name=folder.resolve().name, seed=int(settings.seed if settings.seed is not None else cfg.seed),
                     rounds=int(cfg.rounds))
    if not storage.startswith("journal:"):
        studies.open_storage(storage)  # a wrong database URL fails before the folder records this study's identity
    base = flatten(OmegaConf.to_container(cfg, resolve=True))
    studies.check_identity(folder, {"config": base, "search": settings.identity(), "storage": storage,
                                    "overrides": overrides})
    return spec, launcher


def _progress(spec: StudySpec) -> str:
    study, _ = studies.load(spec)
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    return f"study {spec.study_name}: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())) + \
        f" of {spec.settings.n_trials}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__.strip() + f"\n\npresets: {', '.join(presets())}")
        return 0
    log_to(sys.stdout)
    try:
        spec, launcher = prepare(args)
        study, _ = studies.load(spec)  # a bad storage fails here, before any worker starts
    except ConfigError as err:
        print(f"fedbench.hpo: invalid configuration: {mask(str(err))}", file=sys.stderr)
        return 2
    except SetupError as err:
        print(f"fedbench.hpo: cannot run here: {mask(str(err))}", file=sys.stderr)
        return 4
    from fedbench.hpo.worker import work  # torch and the run loop only once the command is accepted

    settings, folder = spec.settings, Path(spec.folder)
    log.info("study %s: %d trial(s) so far, target %d; %s sampler, %s pruner; objectives %s; storage %s; "
             "%d worker(s)", spec.study_name, len(study.trials), settings.n_trials, settings.sampler, settings.pruner,
             ", ".join(f"{o.metric} ({o.direction})" for o in settings.objectives), mask(spec.storage), settings.workers)
    failures: list[str] = []
    try:
        if settings.workers == 1:
            work(spec, 0)
        else:
            from fedbench.hpo.parallel import run_workers

            failures = run_workers(work, spec, settings.workers, launcher, folder, lambda: _progress(spec))
    except ConfigError as err:
        print(f"fedbench.hpo: invalid configuration: {mask(str(err))}", file=sys.stderr)
        return 2
    study, _ = studies.load(spec)
    summary = outputs.write_all(study, settings, spec.overrides, folder)
    _report(summary, folder, spec)
    for line in failures:
        print(f"fedbench.hpo: {mask(line)}", file=sys.stderr)
    return 1 if failures else 0


def _report(summary: dict[str, Any], folder: Path, spec: StudySpec) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in summary["trials"].items() if n)
    log.info("study %s: %s; wrote %s/{trials.csv,best.yaml,%s}", spec.study_name, counts or "no trials", folder,
             ",".join(summary["plots"].values()) or "no plots")
    if summary.get("best"):
        b = summary["best"]
        log.info("best: trial %d %s with %s; rerun: %s", b["trial"], b["values"], " ".join(b["overrides"]), b["command"])
    elif summary.get("pareto_front"):
        log.info("Pareto front: trials %s (best.yaml, pareto_front.csv)", [e["trial"] for e in summary["pareto_front"]])
    target = spec.storage.removeprefix("journal:")
    log.info("browse it: uvx optuna-dashboard %s", mask(target))


def entry() -> None:
    """The console script (``fedbench-report`` / ``fedbench-hpo``)."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
