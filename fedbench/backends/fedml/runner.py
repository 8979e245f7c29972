"""``backend=fedml``: the run's experiment trained by FedML 0.9.6's own simulator, reported as fedbench's.

fedbench checks the config (:mod:`.translate`), builds the data, partition and initial model exactly as
the other backends do (same seed, same split, same initialisation), hands them to FedML
(:mod:`.handoff`), runs ``env/driver.py`` in FedML's isolated environment (:mod:`.environment`) — one
process (``mode=sp``) or ``mpirun`` with FedML's server and one process per client of a round
(``mode=mpi``) — and turns FedML's per-round log into fedbench's ``metrics.csv`` / ``summary.json`` while
it runs, so reports, sweeps, SLURM grids and resume-by-skip treat it like any other run.

What is identical to ``backend=inprocess``: data, partition, initial parameters, the clients of each round,
local epochs, batch size, learning rate, the FedProx term, weighted averaging and the test set. What is
not: the order in which a client visits its batches (FedML's DataLoader shuffle versus fedbench's
per-(seed, round, client) permutation), so the curves agree within a tolerance, not bit for bit. The
``train_loss`` column is FedML's: the aggregated model's loss on all training data after the round
(fedbench's other backends report the clients' mean local training loss).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from fedbench.backends import external
from fedbench.backends.fedml import environment, handoff
from fedbench.backends.fedml.translate import check, processes
from fedbench.build import build_task
from fedbench.parts import build_part
from fedbench.callbacks import Callback
from fedbench.hardware import hardware
from fedbench.metrics import with_cumulative
from fedbench.params import nbytes
from fedbench.sampling import clients_per_round
from fedbench.runfolder import RunFolder, RunResult
from fedbench.validate import validate_sizes

log = logging.getLogger("fedbench")


def train_fedml(cfg: DictConfig) -> RunResult:
    """Run ``cfg`` through FedML; returns fedbench's RunResult (server/client states stay with FedML)."""
    check(cfg)
    folder = RunFolder(cfg)
    if (done := folder.finished()) is not None:
        return done
    data = build_part(cfg.dataset)
    validate_sizes(cfg.num_clients, len(data.y_train))
    parts = build_part(cfg.partitioner)(data.train_labels, cfg.num_clients, cfg.seed, data.groups)
    task = build_task(cfg, data)
    env, build_s = environment.ensure(cfg.backend.env_dir)
    with folder.accept() as rf:
        (rf.path / "summary.json").unlink(missing_ok=True)  # FedML has no checkpoints: an unfinished run starts over
        callbacks = rf.callbacks([])
        rows, launched = _train(cfg, data, parts, task, env, rf.path / "fedml", callbacks)
        started = external.started(rf.path / "fedml", math.nan)
        handoff.remove_bulk(rf.path / "fedml")
        extra = {"algorithm": cfg.algorithm._target_.rsplit(".", 1)[-1], "status": "finished", "diverged": False,
                 "stopped_early": False, "num_train": len(data.y_train), "hardware": hardware(processes(cfg)),
                 "dataset": data.name, "num_params": sum(p.numel() for p in task.model.parameters()),
                 "topology": "star", "backend": "fedml", "device": "cpu",
                 "fedml": {"version": environment.VERSION, "mode": cfg.backend.mode, "processes": processes(cfg),
                           "startup_s": started - launched, "env_build_s": build_s, "env": str(env)},
                 "bytes_source": "nominal"}
        result = rf.finish(rows, extra, callbacks)
    log.info("done: final accuracy %s, best %s (round %s)", result.summary["final_accuracy"],
             result.summary["best_accuracy"], result.summary["best_round"])
    return result


def _train(cfg: DictConfig, data: Any, parts: list, task: Any, env: Path, folder: Path,
           callbacks: Callback) -> tuple[list[dict[str, Any]], float]:
    """Hand the experiment to FedML (files in ``folder``) and turn its per-round records into rows as they appear;
    returns the rows and when FedML was launched."""
    threads = cfg.backend.threads or (1 if cfg.backend.mode == "mpi" else 0)
    handoff.write(folder, cfg, data, parts, task.model, threads)
    per_client = nbytes(task.model.state_dict())
    rows: list[dict[str, Any]] = []
    log.info("FedML %s (%s, %d process%s) on %s: %s, %d clients, %d rounds -> %s", environment.VERSION,
             cfg.backend.mode, processes(cfg), "es" if processes(cfg) > 1 else "", data.name,
             cfg.algorithm._target_.rsplit(".", 1)[-1], cfg.num_clients, cfg.rounds, folder.parent)
    pending: dict[int, dict[str, Any]] = {}
    times: list[float] = []
    launched = time.time()

    def consume(entries: list[dict[str, Any]]) -> int:
        if not times and (entries or (folder / "started").exists()):
            times.append(external.started(folder, launched))  # round 1's wall time counts from FedML's start
        return _emit(cfg, entries, pending, rows, times, callbacks, per_client)

    _run_fedml(cfg, env, folder, consume)
    if len(rows) != cfg.rounds:
        raise RuntimeError(f"FedML finished but logged {len(rows)} of {cfg.rounds} rounds' metrics "
                           f"(see {folder / 'fedml.log'})")
    return rows, launched


def _command(cfg: DictConfig, env: Path, folder: Path) -> list[str]:
    python = [str(environment.python(env)), "-W", "ignore", str(environment.DRIVER), str(folder)]
    if cfg.backend.mode == "sp":
        return python
    return [str(environment.mpirun(env)), "--oversubscribe", "-np", str(processes(cfg)), *python]


def _run_fedml(cfg: DictConfig, env: Path, folder: Path, on_entries) -> None:
    """Start FedML, feed its round records to ``on_entries`` as they appear, raise if it fails."""
    child_env = external.child_environment(env, {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                                 **handoff.model_environment(folder)})
    external.run_driver(_command(cfg, env, folder), folder, child_env, "FedML", on_entries, "fedml.log")


def _emit(cfg: DictConfig, entries: list[dict[str, Any]], pending: dict[int, dict[str, Any]],
          rows: list[dict[str, Any]], times: list[float], callbacks, per_client: int) -> int:
    """Turn FedML's per-metric records into fedbench rows: a round's row is complete once its test
    accuracy and loss and the training loss were logged (``times`` starts with FedML's start time and
    gets each row's log time). Returns how many records it consumed."""
    for entry in entries:
        pending.setdefault(int(entry["round"]), {}).update(entry)
    m = clients_per_round(cfg.num_clients, cfg.client_fraction)
    while {"Test/Acc", "Test/Loss", "Train/Loss"} <= set(pending.get(len(rows), {})):
        got = pending.pop(len(rows))
        row = {"round": len(rows) + 1, "test_accuracy": got["Test/Acc"], "test_loss": got["Test/Loss"],
               "train_loss": got["Train/Loss"], "clients": m, "steps": math.nan,
               "messages_up": m, "messages_down": m, "bytes_up": m * per_client, "bytes_down": m * per_client,
               "compute_s": math.nan, "aggregate_s": math.nan, "eval_s": math.nan, "comm_s": math.nan,
               "idle_s": math.nan, "comm_sim_s": math.nan, "sim_round_s": math.nan, "wall_s": got["t"] - times[-1],
               "train_accuracy": got.get("Train/Acc", math.nan)}
        rows.append(with_cumulative(row, rows[-1] if rows else None))
        times.append(got["t"])
        callbacks.on_round_end(rows[-1], {}, {})
        log.info("round %d/%d  acc %.4f  test_loss %.4f  train_loss %.4f  %.2fs (FedML %s)", row["round"],
                 cfg.rounds, row["test_accuracy"], row["test_loss"], row["train_loss"], row["wall_s"],
                 cfg.backend.mode)
    return len(entries)
