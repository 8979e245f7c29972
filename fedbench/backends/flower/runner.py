"""``backend=flower``: the run's experiment trained by Flower 1.42's simulation engine, reported as fedbench's.

fedbench checks the config and picks Flower's strategy (:mod:`.translate`), builds the data, partition and initial
model exactly as the other backends do (same seed, split and initialisation), hands them over with the clients
fedbench samples each round and their minibatch seeds (:mod:`fedbench.backends.handoff`), runs ``env/driver.py`` in
Flower's isolated environment (:mod:`.environment`) — ``run_simulation`` with a ``ServerApp`` running Flower's own
strategy and ``ClientApp``s on Ray actors with ``backend.client_cpus`` / ``backend.client_gpus`` each — and turns the
driver's per-round lines into fedbench's ``metrics.csv`` / ``summary.json`` while it runs, so reports, sweeps, SLURM
grids and resume-by-skip treat it like any other run.

The same as ``backend=inprocess``: data, split, initial parameters, the clients of each round, their batch orders,
local SGD, the loss, weighted averaging (or the matching server step, see :mod:`.translate`) and the test set, so the
accuracy per round agrees to float rounding. The bytes are counted in the driver from the ArrayRecords that cross
Flower's Grid (``bytes_source: measured``); Flower's start-up (from launching the driver to the first ClientApp
call on a Ray actor) is ``flower.startup_s``, and round 1 counts from there.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from fedbench.backends import external, handoff
from fedbench.backends.flower import environment
from fedbench.backends.flower.translate import check, strategy
from fedbench.build import build_task
from fedbench.callbacks import Callback
from fedbench.hardware import hardware
from fedbench.metrics import with_cumulative
from fedbench.parts import build_part
from fedbench.runfolder import RunFolder, RunResult
from fedbench.sampling import clients_per_round
from fedbench.seeding import derive_seed
from fedbench.threads import usable_cpus
from fedbench.validate import validate_sizes

log = logging.getLogger("fedbench")
BACKEND = "backend=flower"
EVAL_CHUNK = 4096  # fedbench.local.evaluate's chunk: the same float32 loss sums
COUNTED = ("every Array of every ArrayRecord in the messages the ServerApp sends through Flower's Grid and in the "
           "replies it receives (len(Array.data): the values plus each array's .npy header; no protobuf or Ray "
           "serialization overhead)")


def train_flower(cfg: DictConfig) -> RunResult:
    """Run ``cfg`` through Flower's simulation engine; returns fedbench's RunResult (states stay with Flower)."""
    check(cfg)
    spec = strategy(cfg)
    folder = RunFolder(cfg)
    if (done := folder.finished()) is not None:
        return done
    data = build_part(cfg.dataset)
    validate_sizes(cfg.num_clients, len(data.y_train))
    parts = build_part(cfg.partitioner)(data.train_labels, cfg.num_clients, cfg.seed, data.groups)
    task = build_task(cfg, data)
    handoff.traced(task.model, BACKEND)  # an untraceable model is refused before the environment is built
    env, build_s = environment.ensure(cfg.backend.env_dir)
    with folder.accept() as rf:
        (rf.path / "summary.json").unlink(missing_ok=True)  # no checkpoints: an unfinished run starts over
        callbacks = rf.callbacks([])
        plan = _plan(cfg, spec)
        handoff.write(rf.path / "flower", cfg, data, parts, task.model, plan["flower"]["threads"], BACKEND, plan)
        rows, launched = _train(cfg, env, rf.path / "flower", callbacks)
        startup = _startup(rf.path / "flower", launched)
        handoff.remove_bulk(rf.path / "flower")
        extra = {"algorithm": cfg.algorithm.get("name") or cfg.algorithm._target_.rsplit(".", 1)[-1],
                 "status": "finished", "diverged": False, "stopped_early": False, "num_train": len(data.y_train),
                 "hardware": hardware(1), "dataset": data.name, "topology": "star", "backend": "flower",
                 "num_params": sum(p.numel() for p in task.model.parameters()),
                 "device": "cuda" if cfg.backend.client_gpus > 0 else "cpu",
                 "flower": {"version": environment.VERSION, "strategy": spec["name"], "options": spec["options"],
                            "startup_s": startup["first_client_s"], "startup": startup, "env_build_s": build_s,
                            "env": str(env),
                            "client_resources": {"num_cpus": cfg.backend.client_cpus,
                                                 "num_gpus": cfg.backend.client_gpus},
                            "ray_cpus": plan["flower"]["cpus"], "actors": plan["flower"]["actors"],
                            "processes": plan["flower"]["actors"] + 1},
                 "bytes_source": "measured", "bytes_counted": COUNTED}
        result = rf.finish(rows, extra, callbacks)
    log.info("done: final accuracy %s, best %s (round %s)", result.summary["final_accuracy"],
             result.summary["best_accuracy"], result.summary["best_round"])
    return result


def _plan(cfg: DictConfig, spec: dict[str, Any]) -> dict[str, Any]:
    """The driver's settings beyond the shared handoff: local training, evaluation, strategy and Ray's resources."""
    b = cfg.backend
    cpus = b.cpus or usable_cpus()["cpus"]
    actors = int(cpus // b.client_cpus)  # as Flower sizes its actor pool from Ray's resources
    if b.client_gpus > 0:
        actors = min(actors, int((b.gpus if b.gpus is not None else torch.cuda.device_count()) // b.client_gpus))
    local_seeds = {str(r): {str(c): derive_seed(cfg.seed, r, c, "local") for c in clients}
                   for r, clients in enumerate(handoff.sampled_and_seeds(cfg)[0], start=1)}
    return {"num_clients": int(cfg.num_clients), "lr": float(cfg.lr), "momentum": float(cfg.momentum),
            "weight_decay": float(cfg.weight_decay), "epochs": int(cfg.local_epochs), "eval_every": int(cfg.eval_every),
            "test_batch_size": EVAL_CHUNK, "local_seeds": local_seeds,
            "flower": {"strategy": {"name": spec["name"], "options": spec["options"]}, "cpus": int(cpus),
                       "start_loss": spec["name"] == "QFedAvg",
                       "gpus": b.gpus, "client_cpus": b.client_cpus, "client_gpus": b.client_gpus,
                       "threads": int(b.threads or 1), "actors": actors}}


def _train(cfg: DictConfig, env: Path, folder: Path, callbacks: Callback) -> tuple[list[dict[str, Any]], float]:
    """Run the driver on the handoff in ``folder`` and turn its per-round lines into rows as they appear; returns the
    rows and when the driver was launched."""
    rows: list[dict[str, Any]] = []
    m = clients_per_round(cfg.num_clients, cfg.client_fraction)
    log.info("Flower %s (%s, Ray: %s CPUs, %s CPU / %s GPU per client) on %s: %d clients, %d per round, %d rounds "
             "-> %s", environment.VERSION, strategy(cfg)["name"], cfg.backend.cpus or usable_cpus()["cpus"],
             cfg.backend.client_cpus, cfg.backend.client_gpus, cfg.dataset._target_.rsplit(".", 1)[-1],
             cfg.num_clients, m, cfg.rounds, folder.parent)

    def consume(entries: list[dict[str, Any]]) -> int:
        for got in entries:
            if got["round"] == 1:  # round 1 counts from the first client's start: Ray starts actors lazily
                got["t0"] = max(got["t0"], min(external.new_lines(folder / "actors.jsonl", 0),
                                               key=lambda a: a["called"], default={"called": got["t0"]})["called"])
            row = {"round": got["round"], "test_accuracy": got["acc"], "test_loss": got["loss"],
                   "train_loss": got["train_loss"], "clients": m, "steps": got["steps"],
                   "messages_up": got["messages_up"], "messages_down": got["messages_down"],
                   "bytes_up": got["bytes_up"], "bytes_down": got["bytes_down"], "compute_s": math.nan,
                   "aggregate_s": math.nan, "eval_s": math.nan, "comm_s": math.nan, "idle_s": math.nan,
                   "comm_sim_s": math.nan, "sim_round_s": math.nan, "wall_s": got["t"] - got["t0"]}
            rows.append(with_cumulative(row, rows[-1] if rows else None))
            callbacks.on_round_end(rows[-1], {}, {})
            log.info("round %d/%d  acc %.4f  test_loss %.4f  train_loss %.4f  %.2fs (Flower)", row["round"],
                     cfg.rounds, row["test_accuracy"], row["test_loss"], row["train_loss"], row["wall_s"])
        return len(entries)

    launched = time.time()
    command = [str(environment.python(env)), "-W", "ignore", str(environment.DRIVER), str(folder)]
    external.run_driver(command, folder, external.child_environment(env, {"RAY_DEDUP_LOGS": "0",
                                                                           **handoff.model_environment(folder)}), "Flower",
                        consume, "flower.log")
    if len(rows) != cfg.rounds:
        raise RuntimeError(f"Flower finished but reported {len(rows)} of {cfg.rounds} rounds (see {folder / 'flower.log'})")
    return rows, launched


def _startup(folder: Path, launched: float) -> dict[str, float]:
    """Seconds from launching the driver to: its imports done, every SuperNode connected (round 1 configured), and
    the first ClientApp call on a Ray actor (``startup_s``: Flower's start-up before any client trains)."""
    marks = json.loads((folder / "started").read_text())
    actors = external.new_lines(folder / "actors.jsonl", 0)
    first = min((a["called"] for a in actors), default=marks["t"])
    return {"imports_s": marks["imported"] - launched, "engine_s": marks["t"] - launched,
            "first_client_s": first - launched, "actors_used": len({a["pid"] for a in actors})}
