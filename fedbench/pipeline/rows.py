"""The pipeline paradigm's per-epoch row: every rank's clock and losses gathered on rank 0, the whole model
evaluated, and the stage timings (:mod:`fedbench.pipeline.runner`)."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist
from omegaconf import DictConfig

from fedbench.local import evaluate
from fedbench.params import get_flat
from fedbench.pipeline.plan import Layout
from fedbench.pipeline.timing import StageClock


def epoch_row(cfg: DictConfig, lay: Layout, task: Any, parts: list, data: Any, clock: StageClock, losses: list[float],
               epoch: int, t_epoch: float, theory: float, main: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Gather every rank's clock, losses and (replica 0's) stage weights; rank 0 evaluates and builds the row."""
    weights = parts[lay.stage].state_dict() if lay.replica == 0 else None
    mine = {"rank": lay.rank, "stage": lay.stage, "replica": lay.replica, **clock.snapshot()}
    gathered: list[Any] = [None] * (lay.stages * lay.replicas) if main else None
    dist.gather_object((mine, losses, weights), gathered, dst=0)
    if not main:
        return {}, []
    for info, _, state in gathered:
        if state is not None:
            parts[info["stage"]].load_state_dict(state)
    infos = [g[0] for g in gathered]
    last = [g[1] for g in gathered if g[0]["stage"] == lay.stages - 1]
    step_losses = [sum(vals) / len(vals) for vals in zip(*last)]  # mean over replicas, per step
    t_eval = time.perf_counter()
    acc, loss = math.nan, math.nan
    if epoch % cfg.eval_every == 0 or epoch == cfg.rounds:
        acc, loss = evaluate(task, get_flat(task), data.x_test, data.y_test)
    sent = sum(i["bytes_sent"] for i in infos)
    reduced = sum(i["allreduce_bytes"] for i in infos)
    row = {"round": epoch, "test_accuracy": acc, "test_loss": loss,
           "train_loss": sum(step_losses) / len(step_losses) if step_losses else math.nan,
           "clients": lay.stages * lay.replicas, "steps": infos[0]["steps"],
           "messages_up": sum(i["messages"] for i in infos), "messages_down": 0, "bytes_up": sent + reduced, "bytes_down": 0,
           "compute_s": sum(i["compute_s"] for i in infos), "aggregate_s": 0.0, "eval_s": time.perf_counter() - t_eval,
           "comm_s": max(i["send_s"] + i["recv_s"] + i["allreduce_s"] for i in infos),
           "idle_s": max(i["idle_s"] for i in infos), "comm_sim_s": math.nan, "sim_round_s": math.nan,
           "wall_s": time.perf_counter() - t_epoch,
           "bubble": sum(i["bubble"] for i in infos) / len(infos), "bubble_theory": theory,
           "stage_bytes": sent, "allreduce_bytes": reduced,
           "ranks": [{"rank": i["rank"], "compute_s": i["compute_s"], "wait_s": i["idle_s"],
                      "comm_s": i["send_s"] + i["recv_s"] + i["allreduce_s"]} for i in infos],
           "_step_losses": step_losses}
    return row, infos


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)

