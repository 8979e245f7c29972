"""paradigm=pipeline / hybrid: the same training as one process, both schedules, measured bubble, early errors."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fedbench.build import build_task
from fedbench.parts import build_part
from fedbench.errors import ConfigError
from fedbench.params import get_flat
from fedbench.pipeline.plan import split
from fedbench.pipeline.timing import theoretical_bubble
from fedbench.run import run
from fedbench.seeding import torch_generator

BASE = ["backend=ddp", "batch_size=48", "rounds=1", "lr=0.1", "momentum=0.9", "eval_every=1"]


def _single_process(cfg) -> torch.Tensor:
    """The reference: one process, the whole model, the same global batches and optimizer."""
    data = build_part(cfg.dataset)
    task = build_task(cfg, data)
    opt = task.optimizer(list(task.model.parameters()))
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=cfg.batch_size, shuffle=True,
                        drop_last=True, generator=torch_generator(cfg.seed, "centralized-batches"))
    for _ in range(cfg.rounds):
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(task.model(x), y).backward()
            opt.step()
    return get_flat(task)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("paradigm, schedule, extra", [
    ("pipeline", "gpipe", []), ("pipeline", "1f1b", []),
    ("hybrid", "gpipe", ["pipeline.replicas=2"]), ("hybrid", "1f1b", ["pipeline.replicas=2"]),
])
def test_pipeline_and_hybrid_train_like_one_process(make_cfg, paradigm, schedule, extra):
    cfg = make_cfg(f"paradigm={paradigm}", *BASE, "pipeline.stages=3", "pipeline.microbatches=4",
                   f"pipeline.schedule={schedule}", *extra)
    result = run(cfg)  # forked ranks: the result is read back from the run folder
    reference = _single_process(cfg)
    rows = list(csv.DictReader((result.output_dir / "metrics.csv").open()))
    steps = len(build_part(cfg.dataset).y_train) // 48
    assert result.summary["rounds_completed"] == 1 and int(rows[0]["steps"]) == steps
    task = build_task(cfg, build_part(cfg.dataset))
    task.model.load_state_dict(torch.load(result.output_dir / "model.pt", weights_only=True))
    trained = get_flat(task)
    assert not torch.allclose(trained, get_flat(build_task(cfg, build_part(cfg.dataset))))  # it did train
    assert torch.allclose(trained, reference, atol=1e-5, rtol=0), (trained - reference).abs().max()
    pipe = result.summary["pipeline"]
    assert pipe["bubble_theory"] == pytest.approx(2 / 6) and 0 < pipe["bubble_measured"] < 1
    stages = list(csv.DictReader((result.output_dir / "stage_times.csv").open()))
    replicas = 2 if paradigm == "hybrid" else 1
    assert len(stages) == 3 * replicas and {int(r["stage"]) for r in stages} == {0, 1, 2}
    # activations forward and their gradients backward cross each of the 2 stage boundaries, per microbatch
    assert sum(int(r["messages"]) for r in stages if int(r["stage"]) < 2) >= 4 * steps
    if paradigm == "hybrid":
        assert all(float(r["allreduce_bytes"]) > 0 for r in stages)
    losses = list(csv.DictReader((result.output_dir / "steps.csv").open()))
    assert len(losses) == steps and all(float(s["loss"]) > 0 for s in losses)


def test_theoretical_bubble():
    assert theoretical_bubble(3, 4) == pytest.approx(2 / 6)
    assert theoretical_bubble(4, 1) == pytest.approx(3 / 4)
    assert theoretical_bubble(2, 100) == pytest.approx(1 / 101)


def test_split_keeps_parameter_free_layers_with_their_layer(make_cfg):
    cfg = make_cfg()
    model = build_task(cfg, build_part(cfg.dataset)).model  # Flatten, Linear, ReLU, Linear, ReLU, Linear
    parts = split(model, 3)
    assert [[type(m).__name__ for m in p] for p in parts] == [["Flatten", "Linear", "ReLU"], ["Linear", "ReLU"], ["Linear"]]
    assert sum(p.numel() for part in parts for p in part.parameters()) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("overrides, message", [
    (["paradigm=pipeline", "pipeline.stages=4"], "pipeline.stages must be at most the model's 3 layers with parameters (got 4)"),
    (["paradigm=pipeline", "pipeline.microbatches=5"],
     "batch_size (the global batch, 48) must be divisible by pipeline.replicas x pipeline.microbatches = 1 x 5 = 5"),
    (["paradigm=hybrid", "backend.workers=4"],
     "the world size must be pipeline.replicas x pipeline.stages = 2 x 3 = 6 ranks (got 4"),
    (["paradigm=pipeline", "backend=inprocess"], "paradigm=pipeline runs one stage per rank of a process group: use backend=ddp"),
    (["paradigm=pipeline", "pipeline.schedule=interleaved"], "pipeline.schedule must be one of ['gpipe', '1f1b']"),
    (["paradigm=pipeline", "pipeline.schedule=1f1b", "pipeline.microbatches=2"],
     "pipeline.microbatches must be >= pipeline.stages=3 for the 1f1b schedule"),
    (["paradigm=pipeline", "pipeline.replicas=2"], "pipeline.replicas must be 1 for paradigm=pipeline"),
    (["paradigm=pipeline", "model=logreg"], "pipeline.stages must be at most the model's 1 layers with parameters (got 3)"),
    (["paradigm=pipeline", "model=cnn", "dataset=synthetic"], "model: cnn needs image inputs"),
])
def test_bad_pipeline_settings_fail_before_any_process_starts(make_cfg, tmp_path, overrides, message):
    cfg = make_cfg("backend=ddp", "batch_size=48", *overrides)
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert message in str(err.value)
    assert not (tmp_path / "run0").exists()  # nothing written, no rank forked
