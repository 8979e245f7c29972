"""Weights & Biases: one W&B run per job, next to the local CSV/JSON record (always written).

The run is grouped by sweep (``group`` = the multirun folder name), typed by algorithm
(``job_type``) and tagged with dataset and partitioner, so the W&B UI can group runs by
algorithm and plot ``test_accuracy`` against ``round`` or ``cum_bytes_up``. ``mode`` defaults
to ``$WANDB_MODE`` or ``offline``: no account or network is needed, and ``wandb sync`` uploads
later. A resumed job continues the same W&B run (its id is kept in the run folder).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, Sequence

from fedbench.callbacks import Callback
from fedbench.dicts import flatten


def _choice(config: dict[str, Any], group: str) -> str | None:
    target = config.get(group, {}).get("_target_") if isinstance(config.get(group), dict) else None
    return target.rsplit(".", 1)[-1] if target else None


def _sweep_name() -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
        return Path(hydra.sweep.dir).name if hydra.mode == RunMode.MULTIRUN else None
    except ValueError:  # not running under Hydra (tests, notebooks)
        return None


def wandb_logger(output_dir: str, config: dict[str, Any] | None = None, history: Sequence[dict[str, Any]] = (),
                 project: str = "fedbench", entity: str | None = None, group: str | None = None,
                 mode: Literal["online", "offline", "disabled"] = "offline", tags: Sequence[str] = ()) -> Callback:
    """Log rounds and the summary to W&B (``logger=[csv,wandb]``). ``group=None`` uses the sweep folder's name."""
    import wandb  # imported only when this logger is chosen
    from wandb.sdk.lib import runid

    config = config or {}
    id_file = Path(output_dir) / "wandb_run_id.txt"
    run_id = id_file.read_text().strip() if id_file.exists() and history else runid.generate_id()
    id_file.write_text(run_id + "\n")
    run = wandb.init(
        project=project, entity=entity, group=group or _sweep_name(), job_type=_choice(config, "algorithm"),
        tags=[t for t in (_choice(config, "dataset"), _choice(config, "partitioner"), *tags) if t],
        name=Path(output_dir).name, config=flatten(config), dir=output_dir, mode=mode, id=run_id,
        resume="allow", reinit="finish_previous",
    )
    run.define_metric("round")
    run.define_metric("*", step_metric="round")

    def log_round(row: dict[str, Any], server: Any = None, clients: Any = None) -> None:
        run.log({k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))})

    def finish(summary: dict[str, Any]) -> None:
        run.summary.update({k: v for k, v in summary.items() if k != "config" and v is not None})
        run.finish()

    return Callback(log_round, finish)
