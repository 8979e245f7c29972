"""``run(cfg)``: drive the federated rounds of one experiment.

Per round: sample -> local work (backend) -> uploads -> count bytes -> server update ->
evaluate -> log. Tests call ``run`` directly with a composed config.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from fedbench import checkpoint, launch
from fedbench.algorithms.base import State
from fedbench.build import Experiment, build, build_part, save_partition
from fedbench.client import run_client
from fedbench.comm import count_round
from fedbench.local import evaluate
from fedbench.loggers import null_logger
from fedbench.hardware import hardware
from fedbench.metrics import rounds_to_target, summarize, with_cumulative
from fedbench.network import round_comm_time
from fedbench.params import get_flat
from fedbench.sampling import sample_clients
from fedbench.validate import validate_knobs
from fedbench.workload import assign_work

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
    ConfigError before any training and before anything on disk is touched."""
    validate_knobs(cfg)
    processes, threads = launch.plan(cfg.backend)
    out = Path(cfg.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    if processes:  # backend.workers=N without a launcher: fork N ranks that each run this config
        launch.spawn(processes, threads, run, cfg)
        return _from_disk(cfg, out, config)
    if threads:
        torch.set_num_threads(threads)
    if cfg.paradigm != "federated":
        from fedbench.paradigms import run_trainer

        return run_trainer(cfg)
    restored = checkpoint.resume_point(cfg.resume, out, config)
    if restored and _finished(cfg, restored["rows"]) and (out / "summary.json").exists():
        # checked before build(): a rerun grid's finished jobs load no data and build no model
        log.info("%s already finished %d rounds; skipping (resume=none starts over)", out, restored["round"])
        return RunResult(out, restored["rows"], json.loads((out / "summary.json").read_text()),
                         restored["server"], restored["client_states"])
    exp = build(cfg)
    try:
        return _train(cfg, exp, out, config, restored)
    finally:
        exp.backend.close()  # e.g. tear down the process group: the next job of a multirun starts clean


def _train(cfg: DictConfig, exp: Experiment, out: Path, config: dict[str, Any], restored: dict[str, Any] | None) -> RunResult:
    """The round loop of :func:`run` (from a checkpoint when ``restored``)."""
    out.mkdir(parents=True, exist_ok=True)
    main = exp.backend.is_main  # only rank 0 of a distributed run evaluates and writes
    if main:
        save_partition(exp, out)
    server = restored["server"] if restored else exp.algorithm.init(get_flat(exp.task))
    client_states: dict[int, State] = restored["client_states"] if restored else {}
    rows: list[dict[str, Any]] = restored["rows"] if restored else []
    logger = build_part(cfg.logger)(str(out), config, rows) if main else null_logger()
    log.info("%s %s on %s: %d clients, %d params, %d rounds%s -> %s", exp.algorithm.name, exp.algorithm.options,
             exp.data.name, cfg.num_clients, server["params"].numel(), cfg.rounds,
             f" (resuming after round {len(rows)})" if rows else "", out)
    for r in range(len(rows) + 1, cfg.rounds + 1):
        row, server = run_round(exp, cfg, server, client_states, r)
        rows.append(with_cumulative(row, rows[-1] if rows else None))
        logger.log_round(rows[-1])
        if main:
            _log_row(rows[-1], cfg.rounds)
        diverged = _diverged(rows)  # every rank sees the same results
        reached = bool(cfg.stop_at_target) and exp.backend.agree(rounds_to_target(rows, cfg.target_accuracy) is not None)
        last = r == cfg.rounds or diverged or reached
        if main and cfg.checkpoint_every and (r % cfg.checkpoint_every == 0 or last):
            # also when stopping early, so that a rerun sees the run as finished and skips it
            checkpoint.save(out / "checkpoint", {"round": r, "server": server, "client_states": client_states,
                                                 "rows": rows, "fingerprint": checkpoint.fingerprint(config),
                                                 "config": checkpoint.comparable(config)})
        if diverged:
            log.error("round %d: the training loss is NaN; the run diverged (lower lr?); stopping", r)
            break
        if reached:
            if main:
                log.info("reached target accuracy %.4f at round %d: stopping (stop_at_target)", cfg.target_accuracy, r)
            break
    extra = {"algorithm": exp.algorithm.name, "diverged": _diverged(rows), "num_train": len(exp.data.y_train),
             "hardware": hardware(exp.backend.world_size), "dataset": exp.data.name, "num_params": server["params"].numel(),
             "output_dir": str(out), "config": config}
    summary = summarize(rows, cfg.target_accuracy, extra)
    logger.finish(summary)
    if main:
        log.info("done: final accuracy %s, best %s (round %s), rounds to %.2f: %s", summary["final_accuracy"],
                 summary["best_accuracy"], summary["best_round"], cfg.target_accuracy or 0, summary["rounds_to_target"])
    return RunResult(out, rows, summary, server, client_states)


def _from_disk(cfg: DictConfig, out: Path, config: dict[str, Any]) -> RunResult:
    """The result rank 0 of forked workers left in ``out``."""
    restored = checkpoint.resume_point("auto", out, config) if cfg.checkpoint_every else None
    summary = json.loads((out / "summary.json").read_text())
    if restored:
        return RunResult(out, restored["rows"], summary, restored["server"], restored["client_states"])
    return RunResult(out, [], summary, {}, {})


def _diverged(rows: list[dict[str, Any]]) -> bool:
    """The last round trained (took steps) and its training loss is NaN."""
    return bool(rows) and bool(rows[-1]["steps"]) and math.isnan(rows[-1]["train_loss"])


def _finished(cfg: DictConfig, rows: list[dict[str, Any]]) -> bool:
    """All rounds done, the target reached with ``stop_at_target``, or diverged."""
    return (len(rows) >= cfg.rounds or bool(cfg.stop_at_target and rounds_to_target(rows, cfg.target_accuracy))
            or _diverged(rows))


def run_round(exp: Experiment, cfg: DictConfig, server: State, client_states: dict[int, State], r: int):
    """One synchronous round; returns (metrics row, new server state)."""
    t0 = time.perf_counter()
    alg = exp.algorithm
    clients = sample_clients(cfg.num_clients, cfg.client_fraction, cfg.seed, r)
    work = assign_work(clients, r, cfg.seed, cfg.local_epochs, cfg.local_epochs_max, cfg.straggler_fraction)
    # dropped stragglers miss the deadline: they got the model but their work never arrives
    active = [c for c in clients if not (alg.drop_stragglers and c in work.stragglers)]
    states = {c: client_states[c] if c in client_states else alg.init_client(server) for c in active}

    def job(c: int):
        return run_client(exp.task, alg, exp.plan, exp.client_data[c], server, states[c], c, r, work.epochs[c])

    results = exp.backend.map(job, active)
    ranks = [dict(t) for t in exp.backend.rank_times]
    t_agg = time.perf_counter()
    uploads = []
    for res in results:
        upload, client_states[res.client] = alg.client_upload(server, res, states[res.client])
        uploads.append(upload)
    comm = count_round(server, alg.broadcast, len(clients), uploads)
    if uploads:
        server, _ = alg.server_update(server, uploads)
    else:
        log.warning("round %d: every sampled client was a dropped straggler; the model is unchanged", r)
    t_eval = time.perf_counter()
    acc, loss = math.nan, math.nan
    if exp.backend.is_main and (r % cfg.eval_every == 0 or r == cfg.rounds):
        acc, loss = evaluate(exp.task, server["params"], exp.data.x_test, exp.data.y_test)
    n = sum(res.num_samples for res in results)
    comm_sim = round_comm_time(exp.network, len(uploads), comm.bytes_down, comm.bytes_up)
    row = {
        "round": r, "test_accuracy": acc, "test_loss": loss,
        "train_loss": sum(res.train_loss * res.num_samples for res in results) / n if n else math.nan,
        "clients": len(clients), "steps": sum(res.steps for res in results), "messages_up": comm.messages_up, "messages_down": comm.messages_down,
        "bytes_up": comm.bytes_up, "bytes_down": comm.bytes_down,
        "compute_s": sum(res.compute_s for res in results), "aggregate_s": t_eval - t_agg,
        "eval_s": time.perf_counter() - t_eval,
        "comm_s": max(t["comm_s"] for t in ranks), "idle_s": sum(t["wait_s"] for t in ranks),
        "comm_sim_s": comm_sim,
        "sim_round_s": max((res.compute_s / exp.speeds[res.client] for res in results), default=0.0) + comm_sim,
        "wall_s": time.perf_counter() - t0, "ranks": ranks,
    }
    return row, server


def _log_row(row: dict[str, Any], rounds: int) -> None:
    log.info("round %d/%d  acc %.4f  test_loss %.4f  train_loss %.4f  clients %d  up %.2f MB  down %.2f MB  %.2fs",
             row["round"], rounds, row["test_accuracy"], row["test_loss"], row["train_loss"], row["clients"],
             row["cum_bytes_up"] / 1e6, row["cum_bytes_down"] / 1e6, row["wall_s"])
