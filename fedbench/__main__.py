"""``python -m fedbench [overrides]``: the Hydra entry point over :func:`fedbench.run.run`."""

import hydra
from omegaconf import DictConfig

from fedbench.cli import guarded


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    return guarded(cfg)


if __name__ == "__main__":
    main()
