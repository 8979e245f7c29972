"""Weights & Biases: one W&B run per job, next to the local CSV/JSON record (always written).

Every run is named by its Hydra choices (:mod:`fedbench.choices`): ``job_type`` is the algorithm option
(``fedadam``, not the FedAvg class it is built on), tags are ``group=option`` for the parts that define an experiment
(``algorithm=fedadam``, ``dataset=femnist``, ``topology=gossip``, ...), and every run has a group: ``logger.wandb.group``
if set, else the multirun folder's name, the HPO study's name (set by ``fedbench-hpo``), or for a single run its
``algorithm-dataset-partitioner-model`` label (repeated seeds group together). The W&B config is clean: the choices, the
flat knobs and each part's own options, without ``_target_``/``_partial_``, loggers, callbacks or folders. Per round only
scalars are logged (a list of per-rank timings becomes ``key/0``, ``key/1``, ...), against ``round``. ``mode`` defaults to
``$WANDB_MODE`` or ``offline``: no account or network is needed, and ``wandb sync`` uploads later. A resumed job
continues the same W&B run (its id is kept in the run folder). W&B Sweeps: see ``docs/how-to/wandb-sweeps.md``.
"""

from __future__ import annotations

import math
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

from fedbench import choices as run_choices
from fedbench.callbacks import Callback
from fedbench.dicts import flatten
from fedbench.extras import needs_modules
from fedbench.secrets import mask

TAGGED = ("algorithm", "dataset", "partitioner", "model", "topology", "compressor", "aggregator", "attack", "privacy",
          "backend", "paradigm")
NOT_CONFIG = ("logger", "callbacks", "output_dir", "resume", "hydra")


def _sweep_name() -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
        return Path(hydra.sweep.dir).name if hydra.mode == RunMode.MULTIRUN else None
    except ValueError:  # not running under Hydra (tests, notebooks)
        return None


def clean_config(config: dict[str, Any]) -> dict[str, Any]:
    """The W&B config: choices, flat knobs and the parts' own options (flattened), without Hydra's ``_target_`` /
    ``_partial_`` keys, the loggers, callbacks and folders."""
    def own(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: own(v) for k, v in node.items() if not str(k).startswith("_")}
        return node

    kept = {k: v for k, v in config.items() if k not in NOT_CONFIG and k != run_choices.KEY}
    return {**{f"choices.{k}": v for k, v in run_choices.of(config).items()}, **flatten(own(kept))}


def scalars(row: dict[str, Any]) -> dict[str, float | int]:
    """The chartable part of a row: numbers (NaN dropped: not evaluated), lists of numbers as ``key/i``."""
    out: dict[str, float | int] = {}
    for key, value in row.items():
        if isinstance(value, (list, tuple)):
            out.update({f"{key}/{i}": v for i, v in enumerate(value) if _number(v)})
        elif _number(value):
            out[key] = value
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


@contextmanager
def masked_argv() -> Iterator[None]:
    """``sys.argv`` with secrets masked (:mod:`fedbench.secrets`) for the duration."""
    argv = sys.argv
    sys.argv = [mask(a) for a in argv]
    try:
        yield
    finally:
        sys.argv = argv


def run_name(output_dir: str) -> str:
    """The run folder's name without characters that break globbing and W&B filters (brackets, commas, quotes)."""
    return re.sub(r"[\[\]{}()'\",\s]+", "_", Path(output_dir).name).strip("_") or "run"


@needs_modules("wandb")
def wandb_logger(output_dir: str, config: dict[str, Any] | None = None, history: Sequence[dict[str, Any]] = (),
                 project: str = "fedbench", entity: str | None = None, group: str | None = None,
                 mode: Literal["online", "offline", "disabled"] = "offline", tags: Sequence[str] = ()) -> Callback:
    """Log rounds and the summary to W&B (``logger=[csv,wandb]``); see the module docstring for names and groups."""
    import wandb  # imported only when this logger is chosen
    from wandb.sdk.lib import runid

    config = config or {}
    chosen = run_choices.of(config)
    id_file = Path(output_dir) / "wandb_run_id.txt"
    run_id = id_file.read_text().strip() if id_file.exists() and history else runid.generate_id()
    id_file.write_text(run_id + "\n")
    with masked_argv():  # W&B records the command line in the run's metadata
        run = wandb.init(
            project=project, entity=entity, group=group or _sweep_name() or run_choices.label(chosen),
            job_type=chosen.get("algorithm"), tags=[f"{g}={chosen[g]}"[:64] for g in TAGGED if g in chosen] + list(tags),
            name=run_name(output_dir), config=clean_config(config), dir=output_dir, mode=mode, id=run_id,
            resume="allow", reinit="finish_previous",
        )
    run.define_metric("round")
    run.define_metric("*", step_metric="round")

    def log_round(row: dict[str, Any], server: Any = None, clients: Any = None) -> None:
        run.log(scalars(row))

    def finish(summary: dict[str, Any]) -> None:
        run.summary.update({k: v for k, v in summary.items() if k != "config" and v is not None})
        run.finish()

    return Callback(log_round, finish)
