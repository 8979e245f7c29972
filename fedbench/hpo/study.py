"""The Optuna study behind a search: storage, sampler and pruner from the settings, and the study folder.

Storage: by default a :class:`optuna.storages.JournalStorage` over ``<study>/journal.log`` (append-only,
file-locked, safe on a shared filesystem, readable by ``optuna-dashboard``); ``hpo.storage`` may be any
SQLAlchemy URL instead (``postgresql://user@host/db``, ``sqlite:///...``). The study's identity (the base
config and the search settings) is kept in ``<study>/study.yaml``: a rerun with the same command continues
the study; a rerun with a different config is refused before anything is touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from fedbench.dicts import flatten
from fedbench.errors import ConfigError
from fedbench.extras import check_available
from fedbench.hpo.settings import HpoSettings
from fedbench.secrets import MaskingFilter, mask_tree

log = logging.getLogger("fedbench")
JOURNAL = "journal.log"
IDENTITY = "study.yaml"


@dataclass(frozen=True)
class StudySpec:
    """Everything a worker needs to join the study (plain data: it travels to SLURM workers)."""

    settings: HpoSettings
    overrides: tuple[str, ...]       # the command's overrides (the preset and the user's), minus hpo.* runtime ones
    folder: str                      # the study folder
    storage: str                     # "journal:<path>" or an RDB URL
    study_name: str
    seed: int
    rounds: int                      # the trials' rounds (the pruners' max resource)


def storage_url(settings: HpoSettings, folder: Path) -> str:
    """The storage a study uses: ``journal:<folder>/journal.log`` unless ``hpo.storage`` names a database."""
    if settings.storage:
        if "://" not in settings.storage:
            raise ConfigError(f"hpo.storage must be a database URL like postgresql://user@host:5432/db or "
                              f"sqlite:///path.db, or null for a journal file in the study folder (got {settings.storage!r})")
        return settings.storage
    return f"journal:{(folder / JOURNAL).resolve()}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage for ``url`` (see :func:`storage_url`)."""
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    if url.startswith(("postgresql://", "postgresql+psycopg2://", "postgres://")):
        check_available("psycopg2", "hpo.storage=postgresql://...")
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except Exception as err:  # noqa: BLE001 - a driver or connection problem: say which storage
        raise ConfigError(f"hpo.storage={url!r} cannot be opened: {type(err).__name__}: {err}") from err


def sampler(settings: HpoSettings, seed: int) -> optuna.samplers.BaseSampler:
    """The ``hpo.sampler`` (seeded; parallel workers get seed + their index so they do not propose alike)."""
    n = settings.n_startup_trials
    if settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n, constant_liar=True,
                                          multivariate=len(settings.params) > 1)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings.sampler == "grid":
        return _Grid({p.key: p.grid() for p in settings.params}, seed=seed)
    if settings.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=n, warn_independent_sampling=False)
    return optuna.samplers.NSGAIISampler(seed=seed)


class _Grid(optuna.samplers.GridSampler):
    """Optuna's grid sampler, without its ``study.stop()`` once the grid is covered: that call is only allowed
    inside ``study.optimize``, and fedbench's workers ask and tell (they stop at the grid's size themselves)."""

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        return None


def pruner(settings: HpoSettings, rounds: int) -> optuna.pruners.BasePruner:
    """The ``hpo.pruner``; one step = one round, so the pruners' resources are rounds."""
    warmup = max(1, settings.n_warmup_rounds)
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.n_startup_trials, n_warmup_steps=warmup)
    if settings.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup)
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warmup, max_resource=max(rounds, warmup + 1))
    return optuna.pruners.NopPruner()


def grid_size(settings: HpoSettings) -> int | None:
    """The number of grid points (None unless sampler=grid)."""
    if settings.sampler != "grid":
        return None
    size = 1
    for p in settings.params:
        size *= len(p.grid())
    return size


def load(spec: StudySpec, worker: int = 0) -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    """Create the study on first use, or join it; the sampler is seeded per worker."""
    storage = open_storage(spec.storage)
    directions = spec.settings.directions
    study = optuna.create_study(storage=storage, study_name=spec.study_name, directions=directions,
                                sampler=sampler(spec.settings, spec.seed + worker),
                                pruner=pruner(spec.settings, spec.rounds), load_if_exists=True)
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(f"study {spec.study_name!r} in {spec.storage} optimises {[d.name.lower() for d in study.directions]}, "
                          f"not {directions}: use another hpo.dir (or hpo.storage)")
    return study, storage


def check_identity(folder: Path, identity: dict[str, Any]) -> None:
    """Refuse to continue a study folder that holds a study of another config; record a new one's identity.

    The identity is recorded with secrets masked (a database URL's password never reaches ``study.yaml``); a refusal
    names only the keys that differ."""
    identity = flatten(mask_tree(identity))
    path = folder / IDENTITY
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(identity, sort_keys=True, width=200))
        return
    recorded = flatten(yaml.safe_load(path.read_text()) or {})
    differ = sorted(k for k in set(recorded) | set(identity) if recorded.get(k) != identity.get(k))
    if differ:
        details = "; ".join(f"{k}: {recorded.get(k, '(unset)')!r} there, {identity.get(k, '(unset)')!r} now"
                            for k in differ[:6])
        more = f" and {len(differ) - 6} more" if len(differ) > 6 else ""
        raise ConfigError(f"hpo.dir {folder} holds a study of another configuration ({details}{more}); rerun the same "
                          "command to continue it, or pass hpo.dir=<new folder> to start another study")


def log_to(stream: Any) -> None:
    """Print fedbench's log lines to ``stream`` unless a handler exists already; quiet Optuna's own."""
    logger = logging.getLogger("fedbench")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        logger.addHandler(handler)
    for handler in logger.handlers:
        handler.addFilter(MaskingFilter())
    logger.setLevel(logging.INFO)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
