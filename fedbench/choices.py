"""One identity per run: the Hydra choices it was composed from (``algorithm=fedadam``, ``topology=gossip``, ...).

Hydra knows which option of each config group a run picked (``hydra.runtime.choices``); the composed config alone
does not (FedAdam is ``algorithm=fedadam`` but its ``_target_`` is FedAvg's with an Adam server optimizer).
fedbench records them as the config's ``choices`` node (``hydra/*`` groups left out: how a run was launched is not
what it is), so that ``summary.json``, W&B's ``job_type``/``group``/tags/run name, the report's group labels and
``fedbench-report-table --by algorithm`` all name a run the same way. ``choices`` is derived information: it is
not part of a run's identity for resuming (:data:`fedbench.checkpoint.RESUMABLE_DIFFERENCES`).
"""

from __future__ import annotations

from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf, open_dict

KEY = "choices"
IDENTITY = ("algorithm", "dataset", "partitioner", "model")  # what a run is, in a W&B group or a short label


def from_hydra(runtime_choices: Mapping[str, Any]) -> dict[str, str]:
    """Hydra's ``runtime.choices`` in the defaults list's order, without ``hydra/*`` groups and unset ones."""
    items = [(str(k), str(v)) for k, v in runtime_choices.items() if v is not None and not str(k).startswith("hydra/")]
    return dict(reversed(items))  # Hydra lists the defaults last-first


def attach(cfg: DictConfig, runtime_choices: Mapping[str, Any]) -> DictConfig:
    """Set ``cfg.choices`` from Hydra's ``runtime.choices``; returns ``cfg``."""
    with open_dict(cfg):
        cfg[KEY] = from_hydra(runtime_choices)
    return cfg


def attach_from_hydra(cfg: DictConfig) -> DictConfig:
    """Set ``cfg.choices`` from the running Hydra job (a no-op outside one, e.g. a config from :func:`compose`,
    which attaches them itself)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        runtime = HydraConfig.get().runtime.choices
    except ValueError:  # not under Hydra
        return cfg
    return attach(cfg, OmegaConf.to_container(runtime))  # type: ignore[arg-type]


def of(config: Mapping[str, Any]) -> dict[str, str]:
    """The choices of a resolved config (``summary.json``'s ``config``). Runs recorded before choices were kept get
    the algorithm's ``name`` and the other parts' class or function names instead."""
    recorded = config.get(KEY)
    if isinstance(recorded, Mapping) and recorded:
        return {str(k): str(v) for k, v in recorded.items()}
    out = {}
    for group, node in config.items():
        if isinstance(node, Mapping) and isinstance(node.get("_target_"), str):
            out[str(group)] = str(node.get("name") or node["_target_"].rsplit(".", 1)[-1])
    return out


def label(choices: Mapping[str, str], groups: tuple[str, ...] = IDENTITY, sep: str = "-") -> str:
    """``fedadam-digits-iid-mlp``: the options of ``groups`` (those the run has), joined."""
    return sep.join(choices[g] for g in groups if g in choices)
