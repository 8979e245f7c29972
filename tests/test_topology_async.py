"""Asynchronous topologies on a simulated clock: FedBuff with buffer = concurrency = m is synchronous
FedAvg, FedAsync's staleness weights and mixing by hand, determinism across backends and resume."""

import pytest
import torch

from fedbench.build import build
from fedbench.client import run_client
from fedbench.errors import ConfigError
from fedbench.params import get_flat
from fedbench.run import run
from fedbench.seeding import torch_generator
from fedbench.topology.asynchronous import buffered_update, staleness_weight

ASYNC = ["topology=async"]


def test_fedbuff_with_buffer_equal_to_concurrency_is_synchronous_fedavg(make_cfg):
    common = ["num_clients=20", "client_fraction=0.25", "rounds=3", "local_epochs=1"]
    fedavg = run(make_cfg(*common))
    fedbuff = run(make_cfg(*common, *ASYNC, "topology.mode=fedbuff", "topology.concurrency=5", "topology.buffer_size=5",
                           "topology.buffer_weights=samples"))
    assert torch.allclose(fedbuff.server["params"], fedavg.server["params"], atol=1e-6, rtol=0)
    assert [r["test_accuracy"] for r in fedbuff.rows] == pytest.approx([r["test_accuracy"] for r in fedavg.rows], abs=1e-6)
    assert all(r["staleness"] == 0 for r in fedbuff.rows)  # every update was computed on the current model


def test_fedbuff_two_arrival_step_uses_the_papers_staleness_weights():
    """Nguyen et al. 2022: a buffer of K = 2 arrivals with staleness 0 and 3 steps the server on
    (1/2) (Delta_1 / sqrt(1) + Delta_2 / sqrt(4)); with sample weights (2 and 6 samples) on (2 D1 + 6 D2 / 2) / 8."""
    d1, d2 = torch.tensor([1.0, -2.0, 4.0]), torch.tensor([8.0, 0.0, -4.0])
    kept = [({"delta": d1, "num_samples": 2}, 0), ({"delta": d2, "num_samples": 6}, 3)]
    paper = buffered_update(kept, "polynomial", 0.5, 4, "uniform")
    assert torch.allclose(paper, torch.tensor([(1 + 8 / 2) / 2, -2 / 2, (4 - 4 / 2) / 2]))
    by_samples = buffered_update(kept, "polynomial", 0.5, 4, "samples")
    assert torch.allclose(by_samples, torch.tensor([(2 + 6 * 8 / 2) / 8, -4 / 8, (8 - 6 * 4 / 2) / 8]))
    old_rule = buffered_update(kept, "constant", 0.5, 4, "samples")
    assert torch.allclose(old_rule, (2 * d1 + 6 * d2) / 8)


def test_fedbuff_run_applies_the_staleness_scaling(make_cfg):
    """End to end: a stale FedBuff run differs from the same run without staleness scaling, and the defaults are
    the paper's (uniform buffer, 1/sqrt(1 + tau))."""
    over = [*ASYNC, "topology.concurrency=6", "topology.buffer_size=2", "client_speed.sigma=1", "local_epochs=1",
            "rounds=4", "checkpoint_every=0"]
    paper, plain = run(make_cfg(*over)), run(make_cfg(*over, "topology.staleness=constant"))
    assert any(r["staleness"] > 0 for r in paper.rows)
    assert not torch.allclose(paper.server["params"], plain.server["params"])
    assert paper.summary["config"]["topology"]["buffer_weights"] == "uniform"
    assert paper.summary["config"]["topology"]["staleness"] == "polynomial"


def test_staleness_functions_match_the_paper():
    assert staleness_weight("constant", 7) == 1.0
    assert staleness_weight("polynomial", 3, a=0.5) == pytest.approx(0.5)  # (3 + 1)^-0.5
    assert staleness_weight("polynomial", 0, a=0.5) == 1.0
    assert staleness_weight("hinge", 4, a=0.5, b=4) == 1.0  # tau <= b
    assert staleness_weight("hinge", 6, a=0.5, b=4) == pytest.approx(0.5)  # 1 / (0.5 * 2 + 1)
    assert staleness_weight("hinge", 14, a=0.1, b=4) == pytest.approx(0.5)  # 1 / (0.1 * 10 + 1)


def test_fedasync_first_step_mixes_the_first_arrival_by_hand(make_cfg):
    over = [*ASYNC, "topology.mode=fedasync", "topology.concurrency=1", "topology.alpha=0.6", "rounds=1",
            "local_epochs=1", "checkpoint_every=0"]
    cfg = make_cfg(*over)
    exp = build(cfg)
    x0 = get_flat(exp.task)
    first = torch.randperm(cfg.num_clients, generator=torch_generator(cfg.seed, 1, "sample"))[0].item()
    y = run_client(exp.task, exp.algorithm, exp.plan, exp.client_data[first], {"params": x0}, {}, first, 1, 1).params
    result = run(cfg)
    assert torch.allclose(result.server["params"], 0.4 * x0 + 0.6 * y, atol=1e-6)  # s(0) = 1


def test_async_rows_clock_and_staleness(make_cfg):
    result = run(make_cfg(*ASYNC, "topology.mode=fedasync", "topology.concurrency=4", "client_speed.sigma=1",
                          "rounds=8", "local_epochs=1", "topology.max_staleness=2"))
    times = [r["sim_time_s"] for r in result.rows]
    assert times == sorted(times) and times[0] > 0
    hist = result.summary["staleness_histogram"]
    assert sum(hist.values()) + sum(r["dropped_stale"] for r in result.rows) == 8
    assert all(int(t) <= 2 for t in hist)
    assert all(r["messages_up"] == 1 and r["messages_down"] >= 1 for r in result.rows[1:])


@pytest.mark.parametrize("overrides,message", [
    (["topology.buffer_size=11"], "topology.buffer_size must be an integer in [1, concurrency (10)]"),
    (["topology.concurrency=30"], "topology.concurrency must be <= num_clients (20)"),
    (["topology.mode=sync"], "topology.mode must be one of ['fedasync', 'fedbuff']"),
    (["topology.staleness=linear"], "topology.staleness must be one of"),
    (["topology.buffer_weights=equal"], "topology.buffer_weights must be one of ['uniform', 'samples']"),
    (["algorithm=scaffold"], "algorithm: topology=async applies local models as they arrive"),
    (["model=mlp_bn", "batch_size=16"], "model: topology=async does not carry buffers"),
])
def test_bad_async_settings_are_refused(make_cfg, overrides, message):
    with pytest.raises(ConfigError) as err:
        run(make_cfg(*ASYNC, *overrides))
    assert message in str(err.value)


@pytest.mark.slow
def test_async_forked_ddp_equals_inprocess_and_resumes_exactly(tmp_path):
    from tests.test_ddp import assert_ddp_and_resume_agree

    args = [*ASYNC, "topology.concurrency=6", "topology.buffer_size=3", "client_speed.sigma=1", "local_epochs=1"]
    whole, resumed = assert_ddp_and_resume_agree(args, 5, 3, tmp_path)
    assert [r["sim_time_s"] for r in whole.rows] == [r["sim_time_s"] for r in resumed.rows]


def test_fedbuff_steps_with_a_fedopt_presets_server_optimizer(make_cfg):
    """FedAdam declares plain clients, so FedBuff runs it, stepping with the preset's Adam server optimizer: with the
    buffer = concurrency = m, equal speeds, sample weights and no staleness scaling it is synchronous FedAdam; FedAsync
    (no server step) refuses it by its plain_average capability."""
    common = ["algorithm=fedadam", "num_clients=20", "client_fraction=0.25", "rounds=3", "local_epochs=1"]
    star = run(make_cfg(*common))
    buff = run(make_cfg(*common, *ASYNC, "topology.concurrency=5", "topology.buffer_size=5",
                        "topology.buffer_weights=samples", "topology.staleness=constant"))
    assert torch.allclose(buff.server["params"], star.server["params"], atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="must declare plain_clients and plain_average"):
        run(make_cfg(*common, *ASYNC, "topology.mode=fedasync"))
