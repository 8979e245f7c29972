"""One run folder's lifecycle, written once for every runner (the federated round loop, the Trainer baselines, the
pipeline, FedML, Flower): each runner keeps only its own training loop.

::

    folder = RunFolder(cfg, main=rank == 0)
    if (done := folder.finished()) is not None:     # a finished run of this config: skip it
        return done
    ...build...                                      # may still refuse the config: nothing written yet
    with folder.accept() as rf:                      # the .hydra record, status "running"
        callbacks = rf.callbacks(rows)               # loggers, the ``callbacks`` group, stop_at_target
        ...train, calling callbacks per round...
        return rf.finish(rows, extra, callbacks, server, client_states)   # summary.json (with provenance), status

A failure inside ``accept()`` marks the folder ``failed`` (with the error) and re-raises. Only rank 0 of a
distributed run (``main``) writes; other ranks get no-op callbacks. The folder's lock is taken by ``run()`` around
all of this (:func:`locked`), once per command.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

from fedbench import records, status
from fedbench.callbacks import Callback, chain, stop_at_target
from fedbench.checkpoint import comparable, differing_keys
from fedbench.errors import ConfigError, RunFolderError
from fedbench.loggers import null_logger
from fedbench.memory import PeakMemory
from fedbench.metrics import diverged, rounds_to_target, summarize
from fedbench.parts import build_part
from fedbench.runlock import run_folder_lock
from fedbench.secrets import mask_tree

log = logging.getLogger("fedbench")
SUMMARY = "summary.json"


@dataclass
class RunResult:
    """What a run returns (everything is also on disk under ``output_dir``)."""

    output_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    server: dict[str, Any]
    client_states: dict[int, Any]


def locked(cfg: DictConfig, enabled: bool = True) -> Any:
    """The run folder's exclusive lock for the duration (see :mod:`fedbench.runlock`)."""
    return run_folder_lock(Path(cfg.output_dir), enabled=enabled)


def is_complete(cfg: DictConfig, rows: list[dict[str, Any]], rounds_completed: int | None = None) -> bool:
    """All rounds done, the target reached with ``stop_at_target``, or diverged."""
    done = len(rows) if rounds_completed is None else rounds_completed
    return (done >= cfg.rounds or bool(cfg.stop_at_target and rounds_to_target(rows, cfg.target_accuracy))
            or (bool(rows) and diverged(rows[-1], cfg.get("diverge_loss"))))


def read_rows(path: Path) -> list[dict[str, Any]]:
    """A finished run's ``metrics.csv`` rows (numbers parsed; empty cells None)."""
    if not (path / "metrics.csv").exists():
        return []
    with (path / "metrics.csv").open(newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:  # reported like a JSON error: the file named, what is wrong
        raise ValueError(str(err).replace("\n", " ")) from None


def _number(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class RunFolder:
    """A run folder through its lifecycle (see the module docstring)."""

    def __init__(self, cfg: DictConfig, main: bool = True) -> None:
        self.cfg, self.main = cfg, main
        self.path = Path(cfg.output_dir)
        self.config: dict[str, Any] = mask_tree(OmegaConf.to_container(cfg, resolve=True))  # secrets masked
        self.accepted = False
        self.memory: PeakMemory | None = None

    def check_records(self) -> None:
        """Refuse, naming the file, a damaged record (``status.json``, ``summary.json``, ``.hydra/config.yaml``): a
        folder is never read half-understood, and nothing in it is changed."""
        for name, load in ((status.STATUS_FILE, json.loads), (SUMMARY, json.loads),
                           (f"{records.RECORD}/config.yaml", _yaml)):
            path = self.path / name
            if not path.is_file():
                continue
            try:
                content = load(path.read_text())
            except (ValueError, UnicodeDecodeError, OSError) as err:
                content, reason = None, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            else:
                reason = "" if isinstance(content, dict) else f"a {type(content).__name__}, not a mapping"
            if reason:
                raise RunFolderError(f"output_dir {self.path}: {name} is damaged ({reason}); move it away (or the whole "
                                     "folder) and rerun, or use another hydra.run.dir")

    def summary(self) -> dict[str, Any] | None:
        """The folder's ``summary.json``, refused when it belongs to another experiment."""
        self.check_records()
        path = self.path / SUMMARY
        if not path.exists():
            return None
        done = json.loads(path.read_text())
        if comparable(done.get("config", {})) != comparable(self.config):
            diff = differing_keys(done.get("config", {}), comparable(self.config))
            raise ConfigError(f"output_dir {self.path} holds another run (its summary.json differs in: "
                              f"{', '.join(diff)}); use a new output directory")
        return done

    def finished(self, rows: list[dict[str, Any]] | None = None, server: dict | None = None,
                 client_states: dict | None = None) -> RunResult | None:
        """The result of a finished run of this config (status finished or diverged, summary complete), to return
        instead of training again; None when there is work to do. ``rows``/states: from a checkpoint, if any. Damaged
        records are refused (:meth:`check_records`)."""
        done = self.summary()
        if done is None or not status.is_done(self.path):
            return None
        rows = read_rows(self.path) if rows is None else rows
        if not is_complete(self.cfg, rows, done.get("rounds_completed")):
            return None
        log.info("%s already finished %s rounds; skipping (resume=none starts over)", self.path,
                 done.get("rounds_completed"))
        return RunResult(self.path, rows, done, server or {}, client_states or {})

    @contextmanager
    def accept(self, resumed_after: int = 0) -> Iterator["RunFolder"]:
        """The run is accepted (its config is valid and the folder is its own): write the ``.hydra`` record once and
        the status ``running``; on an error inside, the status ``failed`` (with the error), then re-raise."""
        if self.main:
            self.path.mkdir(parents=True, exist_ok=True)
            records.write_once(self.path, self.cfg)
            status.write(self.path, "running", resumed_after=resumed_after)
        self.accepted = True
        if self.main:  # the whole machine's share of the run: forked ranks are this process's siblings
            self.memory = PeakMemory(os.getppid() if os.environ.get("FEDBENCH_FORKED") else os.getpid())
        try:
            yield self
        except BaseException as err:
            if self.main:
                status.write(self.path, "failed", error=f"{type(err).__name__}: {err}")
            raise
        finally:
            if self.memory is not None:
                self.memory.stop()

    def callbacks(self, rows: list[dict[str, Any]], loggers_only: bool = False) -> Callback:
        """The loggers, the ``callbacks`` group and ``stop_at_target``, chained (no-ops off rank 0); ``rows`` are the
        rows restored from a checkpoint (the loggers rewrite their files to exactly those). ``loggers_only``: the
        baselines, whose rows are epochs, get only the loggers."""
        if not self.main:
            return null_logger()
        out, cfg = str(self.path), self.cfg
        chosen = [build_part(cfg.logger)(out, self.config, rows[:])]
        if loggers_only:
            return chain(chosen)
        chosen += [build_part(node)(out, self.config, rows[:]) for node in cfg.get("callbacks", {}).values()]
        if cfg.get("stop_at_target"):
            chosen.append(stop_at_target(cfg.target_accuracy))
        return chain(chosen)

    def finish(self, rows: list[dict[str, Any]], extra: dict[str, Any], callbacks: Callback,
               server: dict | None = None, client_states: dict | None = None) -> RunResult:
        """Summarise the run (final/best accuracy, totals, provenance), hand the summary to the callbacks (the CSV
        logger writes ``summary.json``) and record the final status."""
        memory = self.memory.record() if self.memory is not None else {}
        summary = summarize(rows, self.cfg.get("target_accuracy"),
                            {**extra, **memory, "output_dir": str(self.path), "config": self.config})
        callbacks.on_run_end(summary)
        if self.main:
            status.write(self.path, summary.get("status", "finished"), rounds=len(rows))
        return RunResult(self.path, rows, summary, server or {}, client_states or {})
