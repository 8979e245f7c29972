"""Centralized and data-parallel baselines: ``lightning.Trainer`` on the same LightningModule.

* ``paradigm=centralized``: minibatch SGD on the pooled training data, one process.
* ``paradigm=data_parallel``: synchronous data-parallel SGD with all-reduce (Sync-SGD; Algorithm
  3.1 of the course notes, the setting of Goyal et al. 2017): Lightning's DDP strategy over the
  ranks of ``backend=ddp`` (``backend.workers=N``, torchrun, srun or mpirun). ``batch_size`` is
  the *global* batch, split evenly over the ranks, so the averaged gradient is the centralized
  one and both paradigms follow the same optimisation path up to sampling noise.

A "round" is one epoch; the model is evaluated on the test set after every ``eval_every``-th.
Communication is measured by a DDP communication hook that records every gradient bucket the
ranks all-reduce; bytes and messages are those of the ring all-reduce on those buckets (per
rank and bucket: (N-1)/N of the bucket sent in reduce-scatter and again in all-gather, N-1
messages each), so S steps of a P-parameter fp32 model send 2 (N-1) P 4 S bytes in all.
DDP's one-off parameter broadcast at start-up is not counted. Baselines are short: they do not
checkpoint per round (a rerun of a finished one is skipped).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.environments import LightningEnvironment
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import DictConfig
from torch.utils.data import DataLoader, TensorDataset

from fedbench import checkpoint
from fedbench.backends.ddp import rank_and_world
from fedbench.build import build_task
from fedbench.compress.channel import compressor_of
from fedbench.ddp_hooks import BucketCounter, counting_hook
from fedbench.device import run_device
from fedbench.errors import ConfigError
from fedbench.hardware import hardware
from fedbench.local import evaluate
from fedbench.metrics import diverged, with_cumulative
from fedbench.params import get_flat
from fedbench.parts import build_part
from fedbench.runfolder import RunFolder, RunResult
from fedbench.seeding import derive_seed, torch_generator
from fedbench.threat_model import check_baseline

log = logging.getLogger("fedbench")
# evaluation is fedbench's own (rank 0, whole test set): Lightning's logged metrics are not reduced, and there is no
# validation loop by design; Lightning's start-up lines ("GPU available", tips) would print twice (its own handler and
# Hydra's): fedbench's header already says where the run runs
warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting")
warnings.filterwarnings("ignore", message=r".*defined a `validation_step` but have no `val_dataloader`")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated")
for _name in ("lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class EpochRecorder(Callback):
    """Evaluates (rank 0), times and logs each epoch as one metrics row."""

    def __init__(self, cfg: DictConfig, data: Any, counter: BucketCounter, hook: Any, world: int, logger: Any) -> None:
        self.cfg, self.data, self.counter, self.hook, self.world, self.logger = cfg, data, counter, hook, world, logger
        self.rows: list[dict[str, Any]] = []

    def on_train_start(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        # Lightning registers DDP comm hooks on CUDA only; on gloo/CPU fedbench registers its own
        if self.world > 1:
            trainer.strategy.model.register_comm_hook(self.counter, self.hook)

    def on_train_epoch_start(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        self.t0 = time.perf_counter()
        self.marks = (self.counter.buckets, self.counter.bytes, self.counter.seconds)
        self.loss_sum, self.steps = 0.0, 0

    def on_train_batch_end(self, trainer, task, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.loss_sum += outputs["loss"].detach()  # summed on the device: no host round trip per step
        self.steps += 1

    def on_train_epoch_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        train_s = time.perf_counter() - self.t0
        buckets = self.counter.buckets - self.marks[0]
        payload = self.counter.bytes - self.marks[1]
        comm_s = self.counter.seconds - self.marks[2]
        mine = torch.tensor([buckets, payload, comm_s, train_s - comm_s, self.steps,
                             float(self.loss_sum) / max(self.steps, 1)], dtype=torch.float64, device=task.device)
        ranks = trainer.strategy.all_gather(mine) if self.world > 1 else mine.unsqueeze(0)
        ranks = ranks.reshape(self.world, -1).cpu()
        n = self.world
        epoch = trainer.current_epoch + 1
        t_eval = time.perf_counter()
        acc, loss = math.nan, math.nan
        if trainer.is_global_zero and (epoch % self.cfg.eval_every == 0 or epoch == self.cfg.rounds):
            acc, loss = evaluate(task, get_flat(task), self.data.x_test, self.data.y_test)
            task.train()
        ring_messages = int(ranks[:, 0].sum()) * (n - 1)
        ring_bytes = int(ranks[:, 1].sum()) * (n - 1) // n
        row = {
            "round": epoch, "test_accuracy": acc, "test_loss": loss,
            "train_loss": float(ranks[:, 5].mean()), "clients": n, "steps": int(ranks[:, 4].sum()) // n,
            "messages_up": ring_messages, "messages_down": ring_messages, "bytes_up": ring_bytes, "bytes_down": ring_bytes,
            "compute_s": float(ranks[:, 3].sum()), "aggregate_s": 0.0, "eval_s": time.perf_counter() - t_eval,
            "comm_s": float(ranks[:, 2].max()), "idle_s": 0.0, "comm_sim_s": math.nan, "sim_round_s": math.nan,
            "wall_s": time.perf_counter() - self.t0,
            "ranks": [{"rank": i, "compute_s": float(r[3]), "wait_s": 0.0, "comm_s": float(r[2])} for i, r in enumerate(ranks)],
        }
        self.rows.append(with_cumulative(row, self.rows[-1] if self.rows else None))
        self.logger.on_round_end(self.rows[-1], {}, {})
        if diverged(row, self.cfg.diverge_loss):  # the loss is the ranks' mean: every rank decides alike
            trainer.should_stop = True
        if trainer.is_global_zero:
            log.info("epoch %d/%d  acc %.4f  test_loss %.4f  train_loss %.4f  steps %d  all-reduced %.2f MB  %.2fs",
                     epoch, self.cfg.rounds, acc, loss, row["train_loss"], row["steps"],
                     self.rows[-1]["cum_bytes_up"] / 1e6, row["wall_s"])


def _layout(world: int) -> tuple[int, int]:
    """(devices per node, nodes) of the launcher's world."""
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("SLURM_NTASKS_PER_NODE", "0").split("(")[0] or world)
    return per_node, max(world // per_node, 1)


def run_trainer(cfg: DictConfig) -> RunResult:
    """Fit ``cfg.model`` on the pooled data with ``lightning.Trainer`` (see the module docstring)."""
    check_baseline(cfg)
    rank, world = rank_and_world()
    folder = RunFolder(cfg, main=rank == 0)
    if (folder.path / "checkpoint").is_dir():  # a federated run's folder: the same guard as a federated resume
        checkpoint.resume_point("auto", folder.path, folder.config)
    if (done := folder.finished()) is not None:
        return done
    data_parallel = cfg.paradigm == "data_parallel"
    if not data_parallel and world > 1:
        raise ConfigError(f"paradigm=centralized runs in one process (got a world of {world}); use paradigm=data_parallel")
    data = build_part(cfg.dataset)
    global_batch = cfg.batch_size or len(data.y_train)
    if global_batch % world:
        raise ConfigError(f"batch_size (the global batch, {global_batch}) must be divisible by the {world} ranks")
    task = build_task(cfg, data)  # the same initial model as the federated runs
    with folder.accept() as rf:
        callbacks = rf.callbacks([], loggers_only=True)  # a baseline's rows are epochs: no round callbacks
        recorder = _fit(cfg, data, task, world, global_batch, callbacks, folder)
        is_diverged = bool(recorder.rows) and diverged(recorder.rows[-1], cfg.diverge_loss)
        extra = {"algorithm": cfg.paradigm, "status": "diverged" if is_diverged else "finished",
                 "diverged": is_diverged, "dataset": data.name, "num_train": len(data.y_train),
                 "hardware": hardware(world), "device": "cuda" if run_device(cfg).type == "cuda" else "cpu",
                 "num_params": get_flat(task).numel()}
        result = rf.finish(recorder.rows, extra, callbacks, {"params": get_flat(task)})
    if folder.main:
        log.info("done: final accuracy %s, best %s", result.summary["final_accuracy"], result.summary["best_accuracy"])
    return result


def _trainer(cfg: DictConfig, world: int, recorder: EpochRecorder) -> L.Trainer:
    """A ``lightning.Trainer`` on the run's device: one process, or DDP over the launcher's ranks."""
    gpu = run_device(cfg).type == "cuda"  # with several ranks, Lightning puts each on its own GPU
    if world > 1:
        devices, nodes = _layout(world)
        strategy: Any = DDPStrategy(process_group_backend=None if gpu else "gloo",
                                    cluster_environment=LightningEnvironment() if os.environ.get("FEDBENCH_FORKED") else None)
    else:
        devices, nodes, strategy = 1, 1, "auto"
    if gpu and world == 1:
        devices = [run_device(cfg).index or 0]
    return L.Trainer(accelerator="gpu" if gpu else "cpu", devices=devices, num_nodes=nodes,
                     strategy=strategy, max_epochs=cfg.rounds, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                     num_sanity_val_steps=0, callbacks=[recorder])


def _fit(cfg: DictConfig, data: Any, task: L.LightningModule, world: int, global_batch: int, callbacks: Any,
         folder: RunFolder) -> EpochRecorder:
    """Train with the Trainer, recording one row per epoch (the callbacks get each row as it is made)."""
    os.environ["PL_GLOBAL_SEED"] = str(derive_seed(cfg.seed, "sampler") % 2**31)  # DistributedSampler's seed
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=global_batch // world, shuffle=True,
                        generator=torch_generator(cfg.seed, "centralized-batches"))
    counter, hook = counting_hook(compressor_of(cfg.compressor), cfg.seed)
    recorder = EpochRecorder(cfg, data, counter, hook, world, callbacks)
    log.info("%s baseline: %s, %d params, global batch %d over %d rank(s), %d epochs -> %s", cfg.paradigm, data.name,
             get_flat(task).numel(), global_batch, world, cfg.rounds, folder.path)
    _trainer(cfg, world, recorder).fit(task, train_dataloaders=loader)
    return recorder
