"""``paradigm=pipeline`` and ``paradigm=hybrid``: the model cut into stages over ranks, microbatched.

Pipeline parallelism with ``torch.distributed.pipelining``: each rank builds the same initial model,
keeps its stage (:func:`fedbench.pipeline.plan.split`) and runs the ``pipeline.schedule``: GPipe's
fill-drain (Huang et al. 2019, ``ScheduleGPipe``) or 1F1B (PipeDream-Flush, Narayanan et al. 2021,
``Schedule1F1B``) over ``pipeline.microbatches`` microbatches of each global batch. The loss is the
classifier's cross-entropy on the last stage; gradients are scaled by 1 / microbatches, so a step equals
one SGD step on the global batch's mean loss.

``paradigm=hybrid`` adds ``pipeline.replicas`` data-parallel replicas of the pipeline (world =
replicas x stages, rank ``r`` = stage ``r % stages`` of replica ``r // stages``): each replica takes its
slice of the global batch, and each stage all-reduces its gradients (mean) with the same stage of the
other replicas (one process group per stage) before the optimizer step.

Like the baselines, a "round" is one epoch over the pooled training data; rank 0 gathers the stages,
evaluates the whole model after each ``eval_every``-th epoch and writes ``metrics.csv`` (with
``bubble`` and ``bubble_theory`` columns), ``stage_times.csv`` (per epoch and rank: compute, send,
receive, idle, all-reduce seconds, bytes sent, measured bubble), ``steps.csv`` (the loss of every step)
``summary.json`` and ``model.pt`` (the trained model's state dict).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe
from torch.utils.data import DataLoader, TensorDataset

from fedbench.backends.ddp import rank_and_world
from fedbench.build import build_task
from fedbench.parts import build_part
from fedbench.hardware import hardware
from fedbench.metrics import diverged, with_cumulative
from fedbench.params import get_flat
from fedbench.pipeline.plan import Layout, split
from fedbench.pipeline.rows import epoch_row, write_csv
from fedbench.pipeline.timing import StageClock, instrument, theoretical_bubble, timed_p2p
from fedbench.runfolder import RunFolder, RunResult
from fedbench.seeding import torch_generator
from fedbench.threat_model import check_baseline

log = logging.getLogger("fedbench")
SCHEDULE = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}


def _groups(lay: Layout) -> tuple[Any, Any]:
    """(this rank's pipeline group, its stage's all-reduce group); every rank creates every group, in order."""
    pipes = [dist.new_group(lay.pipeline_ranks(r)) for r in range(lay.replicas)]
    stages = [dist.new_group(lay.replica_ranks(s)) for s in range(lay.stages)]
    return pipes[lay.replica], stages[lay.stage]


def _allreduce_mean(params: list[torch.Tensor], group: Any, replicas: int, clock: StageClock) -> None:
    """Average the stage's gradients over the replicas (one flat all-reduce)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    t0 = time.perf_counter()
    dist.all_reduce(flat, group=group)
    clock.allreduce_s += time.perf_counter() - t0
    clock.allreduce_bytes += 2 * (replicas - 1) * flat.numel() * flat.element_size() // replicas  # ring all-reduce
    clock.messages += 2 * (replicas - 1)
    flat /= replicas
    offset = 0
    for p, g in zip(params, grads):
        p.grad = flat[offset:offset + g.numel()].view_as(g).clone()
        offset += g.numel()


def train_pipeline(cfg: DictConfig) -> RunResult:
    """Train with the model split over ranks (see the module docstring)."""
    check_baseline(cfg)
    rank, world = rank_and_world()
    p = cfg.pipeline
    if os.environ.get("FEDBENCH_FORKED") and not cfg.backend.get("threads"):
        # forked ranks: one torch thread each (a forked process must not enter the parent's OpenMP pool,
        # and replicas x stages ranks share this machine's cores)
        torch.set_num_threads(1)
    lay = Layout(rank, p.stages, p.replicas)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        folder = RunFolder(cfg, main=rank == 0)
        box = [folder.finished() if folder.main else None]  # rank 0 decides whether the run already finished
        dist.broadcast_object_list(box, src=0)
        if box[0] is not None:
            return box[0] if folder.main else RunResult(folder.path, [], {}, {}, {})
        return _train(cfg, lay, folder)
    finally:
        if created:
            dist.destroy_process_group()


@dataclass
class _Stage:
    """This rank's part of the pipeline: its stage of the model, the schedule and what trains it."""

    data: Any
    task: Any
    parts: list
    schedule: Any
    clock: StageClock
    params: list
    optimizer: Any
    loader: DataLoader
    stage_group: Any
    first: bool
    last: bool


def _stage(cfg: DictConfig, lay: Layout) -> _Stage:
    """Build the model (every rank the same), keep this rank's stage, and its schedule, clock and optimizer."""
    p = cfg.pipeline
    data = build_part(cfg.dataset)
    task = build_task(cfg, data)
    parts = split(task.model, p.stages)
    mine, first, last = parts[lay.stage], lay.stage == 0, lay.stage == p.stages - 1
    pipe_group, stage_group = _groups(lay)
    stage = PipelineStage(mine, lay.stage, p.stages, torch.device("cpu"), group=pipe_group)
    schedule = SCHEDULE[p.schedule](stage, n_microbatches=p.microbatches, loss_fn=type(task).pipeline_loss)
    clock = StageClock()
    instrument(stage, mine, clock, first, last)
    params = list(mine.parameters())
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=cfg.batch_size, shuffle=True,
                        drop_last=True, generator=torch_generator(cfg.seed, "centralized-batches"))
    return _Stage(data, task, parts, schedule, clock, params, task.optimizer(params), loader, stage_group, first, last)


def _epoch(cfg: DictConfig, lay: Layout, st: _Stage) -> list[float]:
    """One epoch of pipelined steps on this rank; the last stage's per-step losses."""
    p, clock = cfg.pipeline, st.clock
    clock.reset()
    losses: list[float] = []
    for x, y in st.loader:
        x, y = x.chunk(p.replicas)[lay.replica], y.chunk(p.replicas)[lay.replica]
        st.optimizer.zero_grad()
        mb_losses: list[torch.Tensor] = []
        t0 = time.perf_counter()
        with timed_p2p(clock):
            if st.first:
                st.schedule.step(x)
            elif st.last:
                st.schedule.step(target=y, losses=mb_losses)
            else:
                st.schedule.step()
        clock.step_s += time.perf_counter() - t0
        if p.replicas > 1:
            _allreduce_mean(st.params, st.stage_group, p.replicas, clock)
        st.optimizer.step()
        clock.steps += 1
        if st.last:
            losses.append(float(torch.stack(mb_losses).detach().mean()))
    return losses


def _train(cfg: DictConfig, lay: Layout, folder: RunFolder) -> RunResult:
    p, main = cfg.pipeline, folder.main
    st = _stage(cfg, lay)
    theory = theoretical_bubble(p.stages, p.microbatches)
    with folder.accept() as rf:
        callbacks = rf.callbacks([], loggers_only=True)  # rows are epochs: no round callbacks
        if main:
            log.info("%s: %s, %d params in %d stages x %d replica(s), %s schedule, %d microbatches of %d, global batch "
                     "%d, %d epochs -> %s", cfg.paradigm, st.data.name, get_flat(st.task).numel(), p.stages, p.replicas,
                     p.schedule, p.microbatches, cfg.batch_size // (p.replicas * p.microbatches), cfg.batch_size,
                     cfg.rounds, rf.path)
        rows: list[dict[str, Any]] = []
        step_losses: list[list[Any]] = []
        stage_rows: list[dict[str, Any]] = []
        for epoch in range(1, cfg.rounds + 1):
            t_epoch = time.perf_counter()
            losses = _epoch(cfg, lay, st)
            row, stage_info = epoch_row(cfg, lay, st.task, st.parts, st.data, st.clock, losses, epoch, t_epoch, theory,
                                         main)
            if main:
                step_losses += [[epoch, i + 1, loss] for i, loss in enumerate(row.pop("_step_losses"))]
                stage_rows += [{"epoch": epoch, **s} for s in stage_info]
                rows.append(with_cumulative(row, rows[-1] if rows else None))
                callbacks.on_round_end(rows[-1], {}, {})
                log.info("epoch %d/%d  acc %.4f  train_loss %.4f  steps %d  bubble %.3f (theory %.3f)  sent %.2f MB  "
                         "%.2fs", epoch, cfg.rounds, row["test_accuracy"], row["train_loss"], row["steps"], row["bubble"],
                         theory, rows[-1]["cum_bytes_up"] / 1e6, row["wall_s"])
            stop = torch.tensor([int(main and diverged(row, cfg.diverge_loss))])
            dist.broadcast(stop, 0)
            if stop.item():
                break
        if not main:
            return RunResult(rf.path, [], {}, {}, {})
        return _finish(cfg, lay, st, rf, rows, step_losses, stage_rows, theory, callbacks)


def _finish(cfg: DictConfig, lay: Layout, st: _Stage, rf: RunFolder, rows: list, step_losses: list, stage_rows: list,
            theory: float, callbacks: Any) -> RunResult:
    """Rank 0: the trained model, the per-step and per-stage files, and the summary."""
    p = cfg.pipeline
    torch.save(st.task.model.state_dict(), rf.path / "model.pt")  # the trained model, all stages (CPU tensors)
    write_csv(rf.path / "steps.csv", ["epoch", "step", "loss"], step_losses)
    write_csv(rf.path / "stage_times.csv", list(stage_rows[0]), [list(r.values()) for r in stage_rows])
    is_diverged = bool(rows) and diverged(rows[-1], cfg.diverge_loss)
    bubbles = [r["bubble"] for r in rows if math.isfinite(r["bubble"])]
    extra = {"algorithm": cfg.paradigm, "status": "diverged" if is_diverged else "finished", "diverged": is_diverged,
             "dataset": st.data.name, "num_train": len(st.data.y_train), "hardware": hardware(lay.stages * lay.replicas),
             "num_params": get_flat(st.task).numel(), "device": "cpu",
             "pipeline": {"stages": p.stages, "replicas": p.replicas, "microbatches": p.microbatches,
                          "schedule": p.schedule, "bubble_measured": sum(bubbles) / len(bubbles) if bubbles else None,
                          "bubble_theory": theory,
                          "stage_layers": [[type(m).__name__ for m in part] for part in st.parts]}}
    result = rf.finish(rows, extra, callbacks, {"params": get_flat(st.task)})
    log.info("done: final accuracy %s; measured bubble %.3f vs theoretical %.3f", result.summary["final_accuracy"],
             extra["pipeline"]["bubble_measured"] or float("nan"), theory)
    return result
