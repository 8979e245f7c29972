"""``paradigm=federated``: the round loop, resumed from the run folder's checkpoint if any.

Per round the topology runs one round of :mod:`fedbench.round` (sample -> local work -> uploads -> combine ->
server step -> evaluate -> row); this module adds what happens around it: the callbacks (loggers, early stopping),
the divergence guard, and a checkpoint. The run folder's lifecycle (skip, record, status, summary) is
:class:`fedbench.runfolder.RunFolder`'s.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from fedbench import checkpoint, metrics, progress, startup, writeguard
from fedbench.algorithms.base import State
from fedbench.build import build, save_partition
from fedbench.callbacks import Callback
from fedbench.device import to_device
from fedbench.experiment import Experiment
from fedbench.hardware import hardware
from fedbench.local import evaluate
from fedbench.metrics import with_cumulative
from fedbench.params import get_buffers, get_flat
from fedbench.progress import log_row
from fedbench.runfolder import RunFolder, RunResult
from fedbench.threat_model import threat_summary

log = logging.getLogger("fedbench")


def train_federated(cfg: DictConfig) -> RunResult:
    """``paradigm=federated``: the round loop, resumed from the run folder's checkpoint if any."""
    imports_s = startup.imports_s()
    folder = RunFolder(cfg)
    folder.check_records()  # a damaged status, summary or .hydra record is refused before anything is read or written
    restored = checkpoint.resume_point(cfg.resume, folder.path, folder.config)
    if restored:  # checked before build(): a rerun grid's finished jobs load no data and build no model
        done = folder.finished(restored["rows"], restored["server"], restored["client_states"])
        if done is not None:
            return done
    exp = build(cfg)
    exp.timings["imports_s"] = imports_s
    folder.main = exp.backend.is_main  # only rank 0 of a distributed run evaluates and writes
    try:
        with folder.accept(resumed_after=len(restored["rows"]) if restored else 0):
            return _train(cfg, exp, folder, restored)
    finally:
        exp.backend.close()  # e.g. tear down the process group: the next job of a multirun starts clean


def initial_server(exp: Experiment) -> State:
    """The algorithm's initial server state for the task's initial model, with its buffers if any."""
    server = exp.algorithm.init(get_flat(exp.task))
    buffers = get_buffers(exp.task)
    return server if buffers is None else {**server, "buffers": buffers}


def _start(exp: Experiment, folder: RunFolder, restored: dict[str, Any] | None) -> tuple[dict[str, Any], list]:
    """The topology's state and the rows so far: from the checkpoint, or fresh (an old summary then no longer
    describes this folder and is removed)."""
    if folder.main:
        folder.path.mkdir(parents=True, exist_ok=True)
        save_partition(exp, folder.path)
        if not restored:
            (folder.path / "summary.json").unlink(missing_ok=True)
    if restored:
        state = to_device({k: v for k, v in restored.items() if k not in checkpoint.META}, exp.device)
        return state, restored["rows"]
    return exp.topology.init(exp, initial_server(exp)), []


def _train(cfg: DictConfig, exp: Experiment, folder: RunFolder, restored: dict[str, Any] | None) -> RunResult:
    """The round loop (from a checkpoint when ``restored``)."""
    state, rows = _start(exp, folder, restored)
    callbacks = folder.callbacks(rows)
    progress.header(cfg, exp.algorithm.name, exp.algorithm.options, exp.data.name, exp.topology.name,
                    state["server"]["params"].numel(), len(rows), folder.path)
    stopped, first = False, len(rows)
    # from the process start: only meaningful for the process's first run (a later in-process job's would count the
    # jobs before it), like imports_s
    first_run = exp.timings.get("imports_s") is not None
    exp.timings["to_first_round_s"] = startup.since_process_start() if first_run else None
    for r in range(len(rows) + 1, cfg.rounds + 1):
        state, stopped, diverged = _round(cfg, exp, folder, callbacks, state, rows, r)
        if r == first + 1:
            exp.timings["first_round_s"] = rows[-1].get("wall_s")
        if diverged or stopped:
            break
    summary = folder.finish(rows, _extra(cfg, exp, state, rows, stopped), callbacks, state["server"],
                            state["client_states"])
    if folder.main:
        log.info("done: final accuracy %s, best %s (round %s), rounds to %.2f: %s", summary.summary["final_accuracy"],
                 summary.summary["best_accuracy"], summary.summary["best_round"], cfg.target_accuracy or 0,
                 summary.summary["rounds_to_target"])
    return summary


def _round(cfg: DictConfig, exp: Experiment, folder: RunFolder, callbacks: Callback, state: dict[str, Any],
           rows: list[dict[str, Any]], r: int) -> tuple[dict[str, Any], bool, bool]:
    """Round ``r``: the topology's step, the row (cumulative columns, a last evaluation when it diverged), the
    callbacks and the checkpoint; returns (state, stopped, diverged)."""
    callbacks.on_round_start(r)
    state, row = exp.topology.step(exp, cfg, state, r)
    row = with_cumulative(row, rows[-1] if rows else None)
    diverged = metrics.diverged(row, cfg.diverge_loss)  # every rank sees the same results
    if diverged and folder.main and math.isnan(row["test_accuracy"]):  # the last round is always evaluated
        server = state["server"]
        row["test_accuracy"], row["test_loss"] = evaluate(exp.task, server["params"], exp.data.x_test,
                                                          exp.data.y_test, buffers=server.get("buffers"))
    rows.append(row)
    if folder.main:
        log_row(rows[-1], cfg.rounds)
        writeguard.check()  # e.g. hydra/launcher=dask: stop here if another worker has taken this job over
    stopped = exp.backend.agree(bool(callbacks.on_round_end(rows[-1], state["server"], state["client_states"])))
    last = r == cfg.rounds or diverged or stopped
    if folder.main and cfg.checkpoint_every and (r % cfg.checkpoint_every == 0 or last):
        # also when stopping early, so that a rerun sees the run as finished and skips it
        checkpoint.save(folder.path / "checkpoint", {"round": r, **state, "rows": rows,
                                                     "fingerprint": checkpoint.fingerprint(folder.config),
                                                     "config": checkpoint.comparable(folder.config)})
    if diverged:
        log.error("round %d: training loss %s (non-finite or above diverge_loss=%s): the run diverged (lower lr?); "
                  "stopping", r, row["train_loss"], cfg.diverge_loss)
    return state, stopped, diverged


def _extra(cfg: DictConfig, exp: Experiment, state: dict[str, Any], rows: list[dict[str, Any]],
           stopped: bool) -> dict[str, Any]:
    """What ``summary.json`` records of a federated run besides the metrics (``metrics.summarize``)."""
    diverged = bool(rows) and metrics.diverged(rows[-1], cfg.diverge_loss)
    return {"algorithm": exp.algorithm.name, "backend": exp.backend.name, "device": str(exp.device),
            "status": "diverged" if diverged else "finished", "diverged": diverged, "stopped_early": stopped,
            "num_train": len(exp.data.y_train), "hardware": hardware(exp.backend.world_size),
            "dataset": exp.data.name, "num_params": state["server"]["params"].numel(), "topology": exp.topology.name,
            **exp.topology.summary(state), "client_sampling": exp.sampling,
            **threat_summary(exp.threat, rows, exp.sampling), "startup": _startup(exp.timings)}


def _startup(timings: dict[str, Any]) -> dict[str, Any]:
    """summary.json's ``startup`` record (:mod:`fedbench.startup`): this process's phases in seconds, rounded to ms
    (``first_round_s`` and ``to_first_round_s`` are for the first round this process ran: round 1 unless resumed)."""
    keys = ("imports_s", "data_s", "build_s", "to_first_round_s", "first_round_s")
    return {k: None if timings.get(k) is None else round(float(timings[k]), 3) for k in keys}


def result_from_disk(cfg: DictConfig) -> RunResult:
    """The result rank 0 of forked workers left in the run folder."""
    folder = RunFolder(cfg)
    out = Path(cfg.output_dir)
    restored = checkpoint.resume_point("auto", out, folder.config) if cfg.checkpoint_every else None
    summary = folder.summary() or {}
    if restored:
        return RunResult(out, restored["rows"], summary, restored["server"], restored["client_states"])
    return RunResult(out, [], summary, {}, {})
