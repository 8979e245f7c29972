"""The task group: a user's LightningModule through task=..., every configure_optimizers form,
LR schedulers stepping per local step, local epoch or round, and self.log values in the rows."""

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fedbench.build import build
from fedbench.client import run_client
from fedbench.errors import ConfigError
from fedbench.local_optim import parse
from fedbench.params import get_flat, set_flat
from fedbench.run import run

USER = ["hydra.searchpath=[file://" + str(Path(__file__).parent / "conf") + "]", "task=user"]
TOY = ["model=logreg", "num_clients=2", "client_fraction=1", "batch_size=null", "checkpoint_every=0"]


def _client(exp, cfg, r=1, epochs=None, client=0, start=None):
    server = exp.algorithm.init(get_flat(exp.task) if start is None else start)
    return server, run_client(exp.task, exp.algorithm, exp.plan, exp.client_data[client], server, {}, client, r,
                              epochs or cfg.local_epochs)


def test_user_module_with_list_form_scheduler_and_self_log_by_hand(make_cfg):
    """Full batch, 2 local epochs: StepLR(gamma 0.5) per epoch gives steps at lr 0.5 and 0.25."""
    cfg = make_cfg(*USER, *TOY, "local_epochs=2", "rounds=1")
    exp = build(cfg)
    w0 = get_flat(exp.task)
    x, y = exp.client_data[0]

    def grad_and_acc(w):
        set_flat(exp.task, w)
        logits = exp.task.model(x)
        grads = torch.autograd.grad(F.cross_entropy(logits, y), list(exp.task.parameters()))
        return torch.cat([g.reshape(-1) for g in grads]), float((logits.argmax(1) == y).float().mean())

    g0, acc0 = grad_and_acc(w0)
    w1 = w0 - 0.5 * g0
    g1, acc1 = grad_and_acc(w1)
    w2 = w1 - 0.25 * g1
    _, res = _client(exp, cfg, start=w0)
    assert torch.allclose(res.params, w2, atol=1e-6)
    assert res.lr == pytest.approx(0.375)  # mean rate over the two steps (SCAFFOLD II divides by it)
    assert res.logged["train_acc"] == pytest.approx((acc0 + acc1) / 2)
    assert res.logged["batch_size_seen"] == len(y)


def test_user_module_runs_end_to_end_and_its_logs_reach_metrics_csv(make_cfg):
    result = run(make_cfg(*USER, "rounds=3", "local_epochs=1"))
    assert result.summary["final_accuracy"] > 0.5
    rows = list(csv.DictReader((result.output_dir / "metrics.csv").open()))
    assert {"train_acc", "batch_size_seen"} <= set(rows[0])
    for row, mem in zip(rows, result.rows):
        assert 0 <= float(row["train_acc"]) <= 1 and float(row["train_acc"]) == pytest.approx(mem["train_acc"])
        assert 1 <= float(row["batch_size_seen"]) <= 10  # batch_size=10; last batches may be smaller


@pytest.mark.parametrize("interval,rates", [("round", [0.4, 0.2, 0.1]), ("epoch", [0.3, 0.3, 0.3]),
                                            ("step", [0.4 * 7 / 12] * 3)])
def test_scheduler_intervals(make_cfg, interval, rates):
    """StepLR(step_size=1, gamma=0.5), base lr 0.4. round: round r trains at 0.4 * 0.5^(r-1); epoch: 2 full-batch
    epochs at 0.4 then 0.2 (mean 0.3) every round; step: batches of 3 steps at 0.4, 0.2, 0.1 (mean 0.4 * 7/12)."""
    sched = ["+task.scheduler={_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 1, gamma: 0.5}",
             f"task.scheduler_interval={interval}", "lr=0.4"]
    cfg = make_cfg(*TOY, *sched, "local_epochs=2" if interval == "epoch" else "local_epochs=1")
    exp = build(cfg)
    if interval == "step":
        n = len(exp.client_data[0][1])
        exp = build(make_cfg(*TOY, *sched, "local_epochs=1", f"batch_size={-(-n // 3)}"))
    got = [_client(exp, cfg, r=r)[1].lr for r in (1, 2, 3)]
    assert got == pytest.approx(rates)
    assert _client(exp, cfg, r=2)[1].lr == pytest.approx(rates[1])  # asking for an earlier round again is fine


def test_every_configure_optimizers_form_is_accepted():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    assert parse(opt).optimizer is opt and parse([opt]).optimizer is opt and parse((opt,)).scheduler is None
    assert parse(([opt], [sched])).scheduler is sched and parse(([opt], [])).scheduler is None
    assert parse({"optimizer": opt}).scheduler is None and parse({"optimizer": opt, "lr_scheduler": sched}).interval == "epoch"
    plan = parse([{"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 2}}])
    assert (plan.scheduler, plan.interval, plan.frequency) == (sched, "step", 2)


def test_forms_fedbench_cannot_honour_are_refused_clearly():
    w = torch.nn.Parameter(torch.zeros(2))
    a, b = torch.optim.SGD([w], lr=0.1), torch.optim.SGD([w], lr=0.2)
    with pytest.raises(ConfigError, match="returned 2 optimizers; fedbench's local loop drives exactly one"):
        parse([a, b])
    with pytest.raises(ConfigError, match="ReduceLROnPlateau needs a monitored metric"):
        parse({"optimizer": a, "lr_scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau(a)})
    with pytest.raises(ConfigError, match=r"interval must be one of \['step', 'epoch', 'round'\] \(got 'batch'\)"):
        parse({"optimizer": a, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(a, 1), "interval": "batch"}})
    with pytest.raises(ConfigError, match="configure_optimizers must return an optimizer"):
        parse(None)


def test_bad_task_options_name_the_field(make_cfg):
    with pytest.raises(ConfigError, match=r"task.scheduler_interval must be one of \['step', 'epoch', 'round'\]"):
        run(make_cfg("task.scheduler_interval=monthly"))
    with pytest.raises(ConfigError, match="task.local_buffers must be true or false"):
        run(make_cfg("task.local_buffers=maybe"))


def test_the_command_lines_precheck_finds_a_users_option_on_the_search_path():
    """``fedbench 'hydra.searchpath=[file://my_conf]' task=mine`` (the docs' own-task and extension recipes): the
    precheck composes with the search path, so the user's option is accepted there and refused without it."""
    from fedbench.precheck import precheck

    precheck([*USER, "rounds=1"])
    with pytest.raises(ConfigError, match="task must be one of"):
        precheck(["task=user", "rounds=1"])
