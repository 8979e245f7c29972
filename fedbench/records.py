"""The run folder's ``.hydra/`` record, written once the run is accepted.

Hydra would write ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` when a job starts,
before fedbench has checked anything: a refused command (a different config, a bad value, a locked
folder) would overwrite a finished run's record so that it no longer matches its ``summary.json``.
``conf/config.yaml`` therefore turns Hydra's writing off (``hydra.output_subdir: null``) and the run
writes the same three files here, only after its checks passed, and only if the folder has no record
yet (a resumed run's config equals the recorded one: the checkpoint fingerprint guarantees it).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from fedbench.secrets import mask_tree

RECORD = ".hydra"


def write_once(out: Path, cfg: DictConfig) -> None:
    """Write ``<out>/.hydra/{config,hydra,overrides}.yaml`` unless a record is already there (secrets masked:
    :mod:`fedbench.secrets`)."""
    folder = out / RECORD
    if (folder / "config.yaml").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    _save(cfg, folder / "config.yaml")
    try:
        from hydra.core.hydra_config import HydraConfig

        hydra_cfg = HydraConfig.get()
    except ValueError:  # not under Hydra (tests, notebooks): the job config is the record
        return
    _save(OmegaConf.create({"hydra": hydra_cfg}), folder / "hydra.yaml")
    _save(OmegaConf.create(list(hydra_cfg.overrides.task)), folder / "overrides.yaml")


def _save(node: DictConfig | ListConfig, path: Path) -> None:
    """``OmegaConf.save`` of ``node`` with its secrets masked (interpolations kept as written)."""
    OmegaConf.save(OmegaConf.create(mask_tree(OmegaConf.to_container(node, resolve=False))), path)
