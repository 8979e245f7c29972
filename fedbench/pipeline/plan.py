"""Where the model is cut, which rank holds which stage, and the checks made before any process starts.

The model's layers (an ``nn.Sequential``, nested ones flattened) are cut into ``pipeline.stages``
contiguous stages with as equal numbers of layers that hold parameters as possible; parameter-free
layers (Flatten, ReLU, pooling) stay with the layer before them. Ranks are laid out replica-major:
rank ``r`` is stage ``r % stages`` of replica ``r // stages``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig
from torch import nn

from fedbench.errors import ConfigError, require, require_choice
from fedbench.validate import check_pipeline_sizes

SCHEDULES = ("gpipe", "1f1b")


@dataclass(frozen=True)
class Layout:
    """This rank's place in the replicas x stages grid."""

    rank: int
    stages: int
    replicas: int

    @property
    def stage(self) -> int:
        return self.rank % self.stages

    @property
    def replica(self) -> int:
        return self.rank // self.stages

    def pipeline_ranks(self, replica: int) -> list[int]:
        """The ranks of one replica's pipeline, stage 0 first."""
        return [replica * self.stages + s for s in range(self.stages)]

    def replica_ranks(self, stage: int) -> list[int]:
        """The ranks holding ``stage`` in each replica (its gradient all-reduce group)."""
        return [r * self.stages + stage for r in range(self.replicas)]


def layers(model: nn.Module) -> list[nn.Module]:
    """The model's layers in order, nested ``nn.Sequential`` flattened."""
    if not isinstance(model, nn.Sequential):
        raise ConfigError(f"paradigm=pipeline cuts an nn.Sequential model into stages; the model is a "
                          f"{type(model).__name__} (use model=mlp, cnn, cifar_cnn or logreg)")
    out: list[nn.Module] = []
    for child in model:
        out += layers(child) if isinstance(child, nn.Sequential) else [child]
    return out


def _has_params(layer: nn.Module) -> bool:
    return any(True for _ in layer.parameters())


def split(model: nn.Module, stages: int) -> list[nn.Sequential]:
    """``stages`` contiguous ``nn.Sequential`` stages sharing the model's parameterised layers evenly."""
    flat = layers(model)
    weighted = [i for i, layer in enumerate(flat) if _has_params(layer)]
    if stages > len(weighted):
        raise ConfigError(f"pipeline.stages must be at most the model's {len(weighted)} layers with parameters "
                          f"(got {stages})")
    base, extra = divmod(len(weighted), stages)
    counts = [base + (1 if s < extra else 0) for s in range(stages)]
    starts, taken = [0], 0
    for count in counts[:-1]:
        taken += count
        starts.append(weighted[taken])  # a stage begins at its first parameterised layer
    ends = starts[1:] + [len(flat)]
    return [nn.Sequential(*flat[a:b]) for a, b in zip(starts, ends)]


def check(cfg: DictConfig, world: int | None = None) -> None:
    """Every pipeline setting, before any process starts (the model is built once to count its layers)."""
    from hydra.utils import get_object

    from fedbench.backends.base import declared
    from fedbench.backends.ddp import rank_and_world

    p: Any = cfg.pipeline
    check_pipeline_sizes(p, cfg.paradigm)
    require_choice(p.schedule, "pipeline.schedule", SCHEDULES)
    if p.schedule == "1f1b":  # its warm-up runs one forward per later stage before the first backward
        require(p.microbatches >= p.stages, "pipeline.microbatches", f">= pipeline.stages={p.stages} for the 1f1b "
                "schedule (or use pipeline.schedule=gpipe)", p.microbatches)
    if cfg.paradigm == "pipeline":
        require(p.replicas == 1, "pipeline.replicas", "1 for paradigm=pipeline (use paradigm=hybrid for replicas)", p.replicas)
    device = cfg.get("device", "auto")
    require(device in ("auto", "cpu"), "device", f"cpu or auto with paradigm={cfg.paradigm} (its stages run on the CPU "
            "with gloo; GPU stages are not implemented, so auto means the CPU here)", device)
    if not declared(cfg.backend).process_group:
        target = str(cfg.backend.get("_target_", "?")).rsplit(".", 1)[-1]
        raise ConfigError(f"paradigm={cfg.paradigm} runs one stage per rank of a process group: use backend=ddp (a "
                          f"backend that declares process_group; got backend {target})")
    task_class = get_object(str(cfg.task.get("_target_")))
    if not getattr(task_class, "pipeline_loss", None):
        raise ConfigError(f"paradigm={cfg.paradigm} computes the task's loss on the last stage; task="
                          f"{cfg.task.get('_target_')} declares no pipeline_loss (the classifier's is cross-entropy)")
    need = p.replicas * p.stages
    launched = world if world is not None else rank_and_world()[1]
    have = launched if launched > 1 else cfg.backend.get("workers")
    if have != need:
        raise ConfigError(f"the world size must be pipeline.replicas x pipeline.stages = {p.replicas} x {p.stages} = "
                          f"{need} ranks (got {have}; set backend.workers={need} or launch {need} processes)")
    batch = cfg.batch_size
    require(batch is not None, "batch_size", f"an integer (the global batch) for paradigm={cfg.paradigm}", batch)
    per = p.replicas * p.microbatches
    if batch % per:
        raise ConfigError(f"batch_size (the global batch, {batch}) must be divisible by pipeline.replicas x "
                          f"pipeline.microbatches = {p.replicas} x {p.microbatches} = {per}")
    _in_forked_child(_check_model, cfg)


def _check_model(cfg: DictConfig) -> None:
    from fedbench.build import build_task
    from fedbench.parts import build_part

    data = build_part(cfg.dataset)
    if len(data.y_train) < cfg.batch_size:
        raise ConfigError(f"batch_size={cfg.batch_size} exceeds the {len(data.y_train)} training examples")
    split(build_task(cfg, data).model, cfg.pipeline.stages)


def _in_forked_child(fn: Any, cfg: DictConfig) -> None:
    """Run ``fn(cfg)`` in a forked child and re-raise its ConfigError here. The ranks are forked from this
    process next, and torch compute here (OpenMP / oneDNN thread pools) would deadlock them."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        import torch

        torch.set_num_threads(1)  # a forked child must not enter the parent's OpenMP pool (it would hang)
        try:
            fn(cfg)
            send.send(None)
        except ConfigError as err:
            send.send(str(err))
        except Exception as err:  # noqa: BLE001 - any other failure is reported the same way
            send.send(f"{type(err).__name__}: {err}")

    proc = ctx.Process(target=child)
    proc.start()
    message = receive.recv() if receive.poll(600) else "the model check did not finish in 600 s"
    proc.join()
    if message is not None:
        raise ConfigError(message)
