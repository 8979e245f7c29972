"""Command-line glue: run a config, turning bad input into one clear line and exit code 2."""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig

from fedbench.errors import ConfigError

log = logging.getLogger("fedbench")


def guarded(cfg: DictConfig) -> float | None:
    """Run ``cfg``; return the final accuracy (the value Hydra sweepers optimise)."""
    from fedbench.run import run  # heavy imports (torch, lightning) after Hydra parsed the command line

    try:
        return run(cfg).summary["final_accuracy"]
    except ConfigError as err:
        log.error("invalid configuration: %s", err)
        print(f"fedbench: invalid configuration: {err}", file=sys.stderr)
        sys.exit(2)
