"""Compose fedbench's config in-process (tests, notebooks, HPO trials), with clear errors.

``compose(["algorithm=scaffold", "rounds=5"], output_dir)`` returns exactly the config the command
line would build. An unknown option of a config group (``paradigm=gossip``) raises
:class:`~fedbench.errors.ConfigError` ``"paradigm must be one of ['federated', 'centralized',
'data_parallel'] (got 'gossip')"``, the default option first, instead of Hydra's composition error.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict

from fedbench import choices
from fedbench.errors import ConfigError, require_choice

PACKAGE = Path(__file__).resolve().parent


def _conf_dir() -> Path:
    """``conf/`` of a checkout (next to the package), or the copy an installed wheel ships inside the package."""
    checkout = PACKAGE.parent / "conf"
    return checkout if (checkout / "config.yaml").is_file() else PACKAGE / "conf"


CONF = _conf_dir()


def _default_option(group: str) -> str | None:
    for entry in OmegaConf.to_container(OmegaConf.load(CONF / "config.yaml")).get("defaults", []):
        if isinstance(entry, dict) and group in entry and isinstance(entry[group], str):
            return entry[group]
    return None


@contextmanager
def group_option_errors() -> Iterator[None]:
    """Turn Hydra's "Could not find '<group>/<option>'" into a ConfigError naming the choices."""
    try:
        yield
    except MissingConfigException as err:
        missing = err.missing_cfg_file or re.search(r"Could not load '([^']+)'", str(err))
        missing = missing if isinstance(missing, str) else missing.group(1) if missing else ""
        group = missing.rsplit("/", 1)[0]
        options = list(err.options or []) or sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        if "/" not in missing or not options:
            raise
        group, option = missing.rsplit("/", 1)
        default = _default_option(group)
        ordered = ([default] if default in options else []) + [o for o in options if o != default]
        require_choice(option, group, ordered)
        raise


def check_added_keys(overrides: Sequence[str]) -> None:
    """``+key=value`` appends: refuse a new top-level key that is not a config group (``+lrr=0.5``, a typo
    of ``lr``, would otherwise be accepted and ignored). Keys inside a part (``+model.x``) are checked
    against the part's factory (:mod:`fedbench.schema`); ``++key=value`` adds a key on purpose."""
    groups = {p.name for p in CONF.iterdir() if p.is_dir()}
    for override in overrides:
        if not override.startswith("+") or override.startswith("++"):
            continue
        key = override[1:].split("=", 1)[0].split("@", 1)[0].lstrip("/")
        if "." not in key and "/" not in key and key not in groups:
            knobs = [k for k in OmegaConf.load(CONF / "config.yaml") if k not in ("defaults", "hydra")]
            raise ConfigError(f"{override}: '{key}' is not a fedbench setting or config group (a typo?); settings: "
                              f"{knobs}; groups: {sorted(groups)} (use ++{key}=... to add a key on purpose)")


def compose(overrides: Sequence[str], output_dir: str | Path | None = None, hydra_config: bool = False) -> DictConfig:
    """The composed config for ``overrides`` (``output_dir`` set when given); no Hydra run needed.
    ``hydra_config=True`` keeps the ``hydra`` node (e.g. the chosen ``hydra/launcher``)."""
    check_added_keys(overrides)
    extra = [f"output_dir={output_dir}"] if output_dir is not None else []
    with group_option_errors(), initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose("config", overrides=[*overrides, *extra], return_hydra_config=True)
    choices.attach(cfg, OmegaConf.to_container(cfg.hydra.runtime.choices))  # type: ignore[arg-type]
    if not hydra_config:
        with open_dict(cfg):
            cfg.pop("hydra")
    return cfg


def compose_strictly(overrides: Sequence[str]) -> DictConfig:
    """:func:`compose`, with Hydra's and OmegaConf's errors turned into one-line ConfigErrors naming the field."""
    from hydra.errors import ConfigCompositionException, HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return compose(overrides)
    except ConfigCompositionException as err:
        raise ConfigError(_composition_message(err, overrides)) from None
    except (HydraException, OmegaConfBaseException) as err:
        key = getattr(err, "full_key", None) or "config"
        raise ConfigError(f"{key}: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise ConfigError(f"config: cannot read the configuration for these overrides ({err.strerror or err})") from None


def _composition_message(err: Exception, overrides: Sequence[str]) -> str:
    """"Could not override 'partitioner.alpha' ... not in struct" -> the part's options and where the key exists."""
    cause = err.__cause__ or err
    key = getattr(cause, "full_key", None) or re.search(r"override '([^']+)'", str(err))
    key = key if isinstance(key, str) else key.group(1) if key else "config"
    group, _, option_key = key.partition(".")
    if option_key and (CONF / group).is_dir():
        chosen = _chosen(group, overrides)
        keys = [k for k in OmegaConf.load(CONF / group / f"{chosen}.yaml") if not str(k).startswith("_")] \
            if (CONF / group / f"{chosen}.yaml").is_file() else []
        having = sorted(p.stem for p in (CONF / group).glob("*.yaml") if option_key in OmegaConf.load(p))
        where = f"; {group}={' or '.join(having)} has it" if having else ""
        has = f"its options: {keys}" if keys else "it has no options"
        return f"{key} is not an option of {group}={chosen} ({has}){where}; add a new key on purpose with +{key}=..."
    return f"{key}: {str(cause).splitlines()[0]}"


def _chosen(group: str, overrides: Sequence[str]) -> str:
    """The option of ``group`` these overrides choose (else the default)."""
    for text in overrides:
        name, _, value = text.lstrip("+~").partition("=")
        if name == group:
            return value
    return _default_option(group) or "?"
