"""Command-line glue: run a config, turning bad input into one clear line and exit code 2.

A run that diverges exits with status 3 after writing its records. In a multirun (``-m``), one
job's failure (or divergence) does not end the sweep: the job's folder gets a
``failure.json`` saying why (the error, its type and traceback), the other jobs run, and when the
sweep ends :class:`SweepFailures` lists the failed jobs and exits with their number as status.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fedbench.config import check_added_keys
from fedbench.errors import ConfigError, SetupError

log = logging.getLogger("fedbench")
FAILURE_FILE = "failure.json"


class Diverged(RuntimeError):
    """A run stopped because its training diverged (its records are complete; exit status 3)."""


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # not under Hydra
        return False


def _command_overrides() -> list[str]:
    """The job's command-line overrides (empty outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def record_failure(output_dir: str | Path, err: BaseException) -> Path:
    """Write ``<output_dir>/failure.json``: what went wrong in this job."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"status": "failed", "error": str(err), "type": type(err).__name__, "time": time.time(),
               "traceback": "".join(traceback.format_exception(err))}
    path = out / FAILURE_FILE
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def guarded(cfg: DictConfig) -> float | None:
    """Run ``cfg``; return the final accuracy (the value Hydra sweepers optimise)."""
    from fedbench.run import run  # heavy imports (torch, lightning) after Hydra parsed the command line

    multirun = _in_multirun()
    try:
        check_added_keys(_command_overrides())
        summary = run(cfg).summary
        if summary.get("diverged"):
            raise Diverged(f"the run diverged after {summary['rounds_completed']} round(s) (training loss non-finite "
                           f"or above diverge_loss); best accuracy {summary['best_accuracy']} at round "
                           f"{summary['best_round']}; records in {cfg.output_dir}")
        result = summary["final_accuracy"]
    except Diverged as err:
        return _stop(cfg, err, "", 3, multirun)
    except ConfigError as err:
        return _stop(cfg, err, "invalid configuration: ", 2, multirun)
    except SetupError as err:
        return _stop(cfg, err, "cannot run here: ", 4, multirun)
    except Exception as err:  # noqa: BLE001 - in a sweep, record it and go on with the next job
        if not multirun:
            raise
        log.exception("job failed: %s", err)
        print(f"fedbench: job failed ({type(err).__name__}: {err}); see {Path(cfg.output_dir) / FAILURE_FILE}",
              file=sys.stderr)
        record_failure(cfg.output_dir, err)
        return None
    (Path(cfg.output_dir) / FAILURE_FILE).unlink(missing_ok=True)  # a rerun that succeeded
    return result


def _stop(cfg: DictConfig, err: Exception, prefix: str, status: int, multirun: bool) -> None:
    """One clear line; then exit with ``status``, or in a multirun record the failure and go on."""
    log.error("%s%s", prefix, err)
    print(f"fedbench: {prefix}{err}", file=sys.stderr)
    if not multirun:
        sys.exit(status)
    record_failure(cfg.output_dir, err)


class SweepFailures(Callback):
    """Hydra callback: at the end of a multirun, list the jobs that failed and exit with their count."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        failed = []
        for path in sorted(sweep.rglob(FAILURE_FILE)):
            record = json.loads(path.read_text())
            if record.get("time", 0) >= getattr(self, "started", 0):
                failed.append((path.parent, record))
        if not failed:
            return
        lines = [f"fedbench: {len(failed)} job(s) of the sweep failed:"]
        lines += [f"  {folder}: {rec['type']}: {rec['error']}" for folder, rec in failed]
        print("\n".join(lines), file=sys.stderr)
        sys.exit(min(len(failed), 255))
