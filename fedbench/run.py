"""``run(cfg)``: drive one experiment; ``paradigm=federated`` runs the round loop here.

Per round (:mod:`fedbench.round`): sample -> local work (backend) -> uploads -> count bytes ->
server update -> evaluate; then callbacks (loggers, early stopping) and a checkpoint.
Tests call ``run`` directly with a composed config.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from fedbench import checkpoint, launch, metrics, records, status, writeguard
from fedbench.algorithms.base import State
from fedbench.backends.ddp import rank_and_world
from fedbench.build import Experiment, build, build_part, save_partition
from fedbench.callbacks import Callback, chain, stop_at_target
from fedbench.device import to_device
from fedbench.hardware import hardware
from fedbench.loggers import null_logger
from fedbench.local import evaluate
from fedbench.metrics import rounds_to_target, summarize, with_cumulative
from fedbench.params import get_buffers, get_flat
from fedbench.runlock import run_folder_lock
from fedbench.threads import default_threads
from fedbench.threat_model import threat_summary
from fedbench.validate import validate_knobs

log = logging.getLogger("fedbench")


@dataclass
class RunResult:
    """What a run returns (everything is also on disk under ``output_dir``)."""

    output_dir: Path
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    server: State
    client_states: dict[int, State]


def run(cfg: DictConfig) -> RunResult:
    """Run one experiment end to end (or continue it from a checkpoint); bad config raises
    ConfigError before any training and before anything on disk is touched. The ``paradigm``
    group's ``runner`` does the work (the federated round loop, or a lightning.Trainer baseline), unless the
    backend names a runner of its own (``backend=fedml``: FedML's simulators run the whole experiment)."""
    validate_knobs(cfg)
    own = "runner" in cfg.backend  # such a backend starts its own processes: no forked ranks here
    processes, threads = (0, None) if own else launch.plan(cfg.backend)
    if threads is None and not own:  # the CPUs this process may use, shared among this machine's ranks
        threads = default_threads(processes or None)
    out = Path(cfg.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    if os.environ.get("FEDBENCH_FORKED"):  # a forked rank: the parent holds the folder's lock
        return _run_here(cfg, threads)
    if cfg.get("precheck"):  # a paradigm's own checks (e.g. the pipeline's stages), before any process starts
        build_part(cfg.precheck)(cfg)
    with run_folder_lock(out, enabled=rank_and_world()[0] == 0):
        if processes:  # backend.workers=N without a launcher: fork N ranks that each run this config
            launch.spawn(processes, threads, run, cfg)
            return _from_disk(cfg, out, config)
        return _run_here(cfg, threads)


def _run_here(cfg: DictConfig, threads: int | None) -> RunResult:
    if threads:
        torch.set_num_threads(threads)
    return build_part(cfg.backend.runner if "runner" in cfg.backend else cfg.runner)(cfg)


def train_federated(cfg: DictConfig) -> RunResult:
    """``paradigm=federated``: the round loop, resumed from the run folder's checkpoint if any."""
    out = Path(cfg.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    restored = checkpoint.resume_point(cfg.resume, out, config)
    if restored and _finished(cfg, restored["rows"]) and (out / "summary.json").exists() and status.is_done(out):
        # checked before build(): a rerun grid's finished jobs load no data and build no model
        log.info("%s already finished %d rounds; skipping (resume=none starts over)", out, restored["round"])
        return RunResult(out, restored["rows"], json.loads((out / "summary.json").read_text()),
                         restored["server"], restored["client_states"])
    exp = build(cfg)
    main = exp.backend.is_main
    if main:
        records.write_once(out, cfg)  # accepted: the config is valid and the folder is this run's
        status.write(out, "running", resumed_after=len(restored["rows"]) if restored else 0)
    try:
        result = _train(cfg, exp, out, config, restored)
    except BaseException as err:
        if main:
            status.write(out, "failed", error=f"{type(err).__name__}: {err}")
        raise
    finally:
        exp.backend.close()
    if main:
        status.write(out, result.summary["status"], rounds=len(result.rows))
    return result  # e.g. tear down the process group: the next job of a multirun starts clean


def run_callbacks(cfg: DictConfig, out: Path, config: dict[str, Any], rows: list[dict[str, Any]]) -> Callback:
    """The loggers, the ``callbacks`` group and ``stop_at_target``, chained (rank 0 only)."""
    chosen = [build_part(cfg.logger)(str(out), config, rows)]
    chosen += [build_part(node)(str(out), config, rows) for node in cfg.callbacks.values()]
    if cfg.stop_at_target:
        chosen.append(stop_at_target(cfg.target_accuracy))
    return chain(chosen)


def initial_server(exp: Experiment) -> State:
    """The algorithm's initial server state for the task's initial model, with its buffers if any."""
    server = exp.algorithm.init(get_flat(exp.task))
    buffers = get_buffers(exp.task)
    return server if buffers is None else {**server, "buffers": buffers}


def _train(cfg: DictConfig, exp: Experiment, out: Path, config: dict[str, Any], restored: dict[str, Any] | None) -> RunResult:
    """The round loop of :func:`run` (from a checkpoint when ``restored``)."""
    out.mkdir(parents=True, exist_ok=True)
    main = exp.backend.is_main  # only rank 0 of a distributed run evaluates and writes
    if main:
        save_partition(exp, out)
        if not restored:  # starting over (resume=none, or no checkpoint): an old summary no longer describes this folder
            (out / "summary.json").unlink(missing_ok=True)
    topology = exp.topology
    state = to_device({k: v for k, v in restored.items() if k not in checkpoint.META}, exp.device) if restored else \
        topology.init(exp, initial_server(exp))
    rows: list[dict[str, Any]] = restored["rows"] if restored else []
    callbacks = run_callbacks(cfg, out, config, rows[:]) if main else null_logger()
    log.info("%s %s on %s, %s topology: %d clients, %d params, %d rounds%s -> %s", exp.algorithm.name,
             exp.algorithm.options, exp.data.name, topology.name, cfg.num_clients, state["server"]["params"].numel(), cfg.rounds,
             f" (resuming after round {len(rows)})" if rows else "", out)
    stopped = False
    for r in range(len(rows) + 1, cfg.rounds + 1):
        callbacks.on_round_start(r)
        state, row = topology.step(exp, cfg, state, r)
        row = with_cumulative(row, rows[-1] if rows else None)
        diverged = metrics.diverged(row, cfg.diverge_loss)  # every rank sees the same results
        if diverged and main and math.isnan(row["test_accuracy"]):  # the last round is always evaluated
            server = state["server"]
            row["test_accuracy"], row["test_loss"] = evaluate(exp.task, server["params"], exp.data.x_test,
                                                              exp.data.y_test, buffers=server.get("buffers"))
        rows.append(row)
        if main:
            _log_row(rows[-1], cfg.rounds)
            writeguard.check()  # e.g. hydra/launcher=dask: stop here if another worker has taken this job over
        stopped = exp.backend.agree(bool(callbacks.on_round_end(rows[-1], state["server"], state["client_states"])))
        last = r == cfg.rounds or diverged or stopped
        if main and cfg.checkpoint_every and (r % cfg.checkpoint_every == 0 or last):
            # also when stopping early, so that a rerun sees the run as finished and skips it
            checkpoint.save(out / "checkpoint", {"round": r, **state, "rows": rows,
                                                 "fingerprint": checkpoint.fingerprint(config),
                                                 "config": checkpoint.comparable(config)})
        if diverged:
            log.error("round %d: training loss %s (non-finite or above diverge_loss=%s): the run diverged (lower "
                      "lr?); stopping", r, row["train_loss"], cfg.diverge_loss)
            break
        if stopped:
            break
    extra = {"algorithm": exp.algorithm.name, "backend": exp.backend.name, "device": str(exp.device), "status": "diverged" if _diverged(cfg, rows) else "finished",
             "diverged": _diverged(cfg, rows), "stopped_early": stopped,
             "num_train": len(exp.data.y_train), "hardware": hardware(exp.backend.world_size), "dataset": exp.data.name,
             "num_params": state["server"]["params"].numel(), "topology": topology.name, **topology.summary(state),
             **threat_summary(exp.threat, rows),
             "output_dir": str(out), "config": config}
    summary = summarize(rows, cfg.target_accuracy, extra)
    callbacks.on_run_end(summary)
    if main:
        log.info("done: final accuracy %s, best %s (round %s), rounds to %.2f: %s", summary["final_accuracy"],
                 summary["best_accuracy"], summary["best_round"], cfg.target_accuracy or 0, summary["rounds_to_target"])
    return RunResult(out, rows, summary, state["server"], state["client_states"])


def _from_disk(cfg: DictConfig, out: Path, config: dict[str, Any]) -> RunResult:
    """The result rank 0 of forked workers left in ``out``."""
    restored = checkpoint.resume_point("auto", out, config) if cfg.checkpoint_every else None
    summary = json.loads((out / "summary.json").read_text())
    if restored:
        return RunResult(out, restored["rows"], summary, restored["server"], restored["client_states"])
    return RunResult(out, [], summary, {}, {})


def _diverged(cfg: DictConfig, rows: list[dict[str, Any]]) -> bool:
    """The last round diverged (see :func:`fedbench.metrics.diverged`)."""
    return bool(rows) and metrics.diverged(rows[-1], cfg.diverge_loss)


def _finished(cfg: DictConfig, rows: list[dict[str, Any]]) -> bool:
    """All rounds done, the target reached with ``stop_at_target``, or diverged."""
    return (len(rows) >= cfg.rounds or bool(cfg.stop_at_target and rounds_to_target(rows, cfg.target_accuracy))
            or _diverged(cfg, rows))


def _log_row(row: dict[str, Any], rounds: int) -> None:
    """The progress line: metrics, traffic, round time, clients per second and the time left (the mean round
    time so far times the rounds left)."""
    mean = row["cum_wall_s"] / max(row["round"], 1)
    log.info("round %d/%d  acc %.4f  test_loss %.4f  train_loss %.4f  clients %d  up %.2f MB  down %.2f MB  %.2fs  "
             "%.0f clients/s  eta %s", row["round"], rounds, row["test_accuracy"], row["test_loss"], row["train_loss"],
             row["clients"], row["cum_bytes_up"] / 1e6, row["cum_bytes_down"] / 1e6, row["wall_s"],
             row["clients"] / row["wall_s"] if row["wall_s"] > 0 else 0.0, _duration(mean * (rounds - row["round"])))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
