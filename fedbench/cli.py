"""The ``fedbench`` command: every failure a user can cause ends as one line ``fedbench: <kind>: <message>`` with a
distinct exit status, before anything is written, and secrets are masked in it.

=======  ==========================================================================================
status   meaning
=======  ==========================================================================================
0        the run (or every job of the sweep) finished
2        invalid configuration: a bad value, option, override, combination or another run's folder
3        the run diverged (its records are complete)
4        cannot run here: the machine lacks what a valid config needs (e.g. FedML's environment)
5        the run folder cannot be used: unwritable, or a record in it is damaged (nothing is changed)
k        in a multirun: the number of jobs that failed (each has a ``failure.json``)
=======  ==========================================================================================

The command line is checked before Hydra runs and before torch is imported (:mod:`fedbench.precheck`), so a typo
is answered in about a second. ``HYDRA_FULL_ERROR=1`` shows full tracebacks instead. In a multirun (``-m``) one
job's failure (or divergence) does not end the sweep: the job's folder gets a ``failure.json`` saying why, the other
jobs run, and when the sweep ends :class:`SweepFailures` lists the failed jobs and exits with their number.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fedbench import choices
from fedbench.config import CONF, check_added_keys
from fedbench.errors import ConfigError, RunFolderError, SetupError
from fedbench.secrets import MaskingFilter, mask

log = logging.getLogger("fedbench")
FAILURE_FILE = "failure.json"
STATUS = {"invalid configuration": 2, "diverged": 3, "cannot run here": 4, "run folder": 5}


class Diverged(RuntimeError):
    """A run stopped because its training diverged (its records are complete; exit status 3)."""


def main(argv: Sequence[str] | None = None) -> None:
    """``fedbench [overrides]`` (and ``python -m fedbench``): check the command line, then run it through Hydra."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--help"], ["-h"]):
        from fedbench.cli_help import help_text

        try:
            print(help_text())
        except BrokenPipeError:  # `fedbench --help | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    if os.environ.get("HYDRA_FULL_ERROR") != "1":
        from fedbench.precheck import precheck

        try:
            precheck(args)
        except RunFolderError as err:
            _exit("run folder", err)
        except ConfigError as err:
            _exit("invalid configuration", err)
    sys.argv = [sys.argv[0], *args]
    _hydra_main()


def _hydra_main() -> None:
    import hydra

    @hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
    def run_job(cfg: DictConfig) -> float | None:
        return guarded(cfg)

    run_job()


def _exit(kind: str, err: BaseException) -> None:
    print(f"fedbench: {kind}: {mask(str(err))}", file=sys.stderr)
    sys.exit(STATUS[kind])


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
    """Write ``<output_dir>/failure.json``: what went wrong in this job (secrets masked)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"status": "failed", "error": mask(str(err)), "type": type(err).__name__, "time": time.time(),
               "traceback": mask("".join(traceback.format_exception(err)))}
    path = out / FAILURE_FILE
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def _fresh(out: Path) -> bool:
    """Whether ``out`` was made by this job (Hydra creates it, with the job's log file, before fedbench runs)."""
    return not out.exists() or {p.name for p in out.iterdir()} <= {"fedbench.log"}


def _mask_logs() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())


def guarded(cfg: DictConfig) -> float | None:
    """Run ``cfg``; return the final accuracy (the value Hydra sweepers optimise)."""
    _mask_logs()
    from fedbench.run import run  # heavy imports (torch, lightning) after the command line was checked

    multirun = _in_multirun()
    fresh = _fresh(Path(cfg.output_dir))
    try:
        check_added_keys(_command_overrides())
        summary = run(choices.attach_from_hydra(cfg)).summary
        if summary.get("diverged"):
            raise Diverged(f"the run diverged after {summary['rounds_completed']} round(s) (training loss non-finite "
                           f"or above diverge_loss); best accuracy {summary['best_accuracy']} at round "
                           f"{summary['best_round']}; records in {cfg.output_dir}")
        result = summary["final_accuracy"]
    except Exception as err:  # noqa: BLE001 - one line per kind; in a sweep, record it and go on
        if fresh and not multirun and _kind(cfg, err) in ("invalid configuration", "cannot run here", "run folder"):
            shutil.rmtree(cfg.output_dir, ignore_errors=True)  # refused before any work: leave no folder behind
        return _failed(cfg, err, multirun)
    (Path(cfg.output_dir) / FAILURE_FILE).unlink(missing_ok=True)  # a rerun that succeeded
    return result


def _kind(cfg: DictConfig, err: BaseException) -> str | None:
    """Which failure a user can fix ``err`` is (None: a bug, shown with its traceback)."""
    if isinstance(err, Diverged):
        return "diverged"
    if isinstance(err, RunFolderError):
        return "run folder"
    if isinstance(err, ConfigError):
        return "invalid configuration"
    if isinstance(err, SetupError):
        return "cannot run here"
    if isinstance(err, OSError) and err.filename and str(err.filename).startswith(str(cfg.output_dir)):
        return "run folder"
    return None


def _failed(cfg: DictConfig, err: Exception, multirun: bool) -> None:
    kind = _kind(cfg, err)
    if kind is None and not multirun:
        raise err
    if kind is None:
        log.exception("job failed: %s", mask(str(err)))
        print(f"fedbench: job failed ({type(err).__name__}: {mask(str(err))}); see "
              f"{Path(cfg.output_dir) / FAILURE_FILE}", file=sys.stderr)
        record_failure(cfg.output_dir, err)
        return None
    if kind == "run folder" and isinstance(err, OSError):
        err = RunFolderError(f"output_dir {cfg.output_dir}: cannot write ({err.strerror or err}); choose a folder "
                             "you can write")
    if not multirun:
        _exit(kind, err)
    print(f"fedbench: {kind}: {mask(str(err))}", file=sys.stderr)
    record_failure(cfg.output_dir, err)
    return None


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
