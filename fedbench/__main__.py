"""``python -m fedbench [overrides]``: the Hydra entry point over :func:`fedbench.run.run`."""

import warnings

import hydra
from omegaconf import DictConfig

from fedbench.cli import guarded

# conf/hydra/launcher/submitit_*.yaml deliberately share their names with the plugin's schemas,
# so the documented `hydra/launcher=submitit_slurm` gets our defaults, validated by that schema.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/submitit_\w+' is validated against ConfigStore schema")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return guarded(cfg)


if __name__ == "__main__":
    main()
