"""Ditto, FedRep/FedPer, FedAvg + fine-tuning and FedBN's personal evaluation: Ditto's global model is FedAvg's and
its personal models interpolate between local training (lambda = 0) and the global model (lambda -> infinity);
FedRep's body is FedAvg over the body when the heads are frozen equal; the personal-accuracy columns by hand; resume;
refusals."""

import math

import numpy as np
import pytest
import torch

from fedbench.build import build
from fedbench.client import Trainer, frozen_outside
from fedbench.errors import ConfigError
from fedbench.local import evaluate, train
from fedbench.params import get_flat, weighted_mean
from fedbench.run import run
from fedbench.sampling import sample_clients
from fedbench.seeding import torch_generator

SMALL = ["num_clients=6", "rounds=2", "local_epochs=1", "checkpoint_every=0", "partitioner=shards"]
FULL = [*SMALL, "client_fraction=1"]


def test_dittos_global_model_is_fedavgs_for_any_lambda(make_cfg):
    fedavg = run(make_cfg(*SMALL, "client_fraction=0.5"))
    for lam in (0.0, 0.5):
        ditto = run(make_cfg(*SMALL, "client_fraction=0.5", "algorithm=ditto", f"algorithm.lam={lam}"))
        assert torch.equal(ditto.server["params"], fedavg.server["params"])
        assert [r["test_accuracy"] for r in ditto.rows] == [r["test_accuracy"] for r in fedavg.rows]


def test_ditto_with_lambda_zero_is_local_training(make_cfg):
    """Every client sampled every round: its personal model is plain local SGD from the initial model, one epoch per
    round with the personal pass's batches (seed, round, client, "personal")."""
    cfg = make_cfg(*FULL, "algorithm=ditto", "algorithm.lam=0")
    exp, result = build(cfg), run(cfg)
    w0 = get_flat(exp.task)
    for c in range(6):
        v = w0
        for r in (1, 2):
            v = train(exp.task, v, *exp.client_data[c], epochs=1, batch_size=cfg.batch_size,
                      generator=torch_generator(cfg.seed, r, c, "personal"), round_=r).params
        assert torch.equal(result.client_states[c]["algorithm"]["personal"], v), c


def test_ditto_with_lambda_to_infinity_is_the_global_model(make_cfg):
    """With lr * lambda = 1 each personal step is v <- w - g(v) / lambda: the personal model is the global model it
    received (FedAvg's after round 1) up to ||g|| / lambda, and goes to it as lambda grows."""
    gaps = []
    for lam in (1e2, 1e4, 1e6):
        args = [*FULL, f"lr={1 / lam}"]
        received = run(make_cfg(*args, "rounds=1")).server["params"]  # FedAvg's w^1 = Ditto's
        ditto = run(make_cfg(*args, "algorithm=ditto", f"algorithm.lam={lam}"))
        gaps.append(max(float((s["algorithm"]["personal"] - received).abs().max()) for s in ditto.client_states.values()))
    assert gaps[0] < 0.05 and gaps[1] < gaps[0] / 50 and gaps[2] < gaps[1] / 50 and gaps[2] < 1e-5, gaps


def test_fedreps_body_is_fedavg_over_the_body_with_equal_frozen_heads(make_cfg):
    """head_epochs = 0: every client's head stays the initial one, so each round is FedAvg of the body trained with
    that head frozen (sample-weighted mean of the bodies)."""
    cfg = make_cfg(*SMALL, "client_fraction=0.5", "algorithm=fedrep", "algorithm.head_epochs=0")
    exp, result = build(cfg), run(cfg)
    w = w0 = get_flat(exp.task)
    head = Trainer(exp.task, exp.plan, exp.client_data[0], 0, 1, 1, None, None).head(1)
    assert head.stop == w0.numel() and head.start == w0.numel() - (200 * 10 + 10)  # the 2NN's output layer
    for r in (1, 2):
        bodies, sizes = [], []
        for c in sample_clients(6, 0.5, cfg.seed, r):
            with frozen_outside(exp.task, slice(0, head.start)):
                out = train(exp.task, w, *exp.client_data[c], epochs=1, batch_size=cfg.batch_size,
                            generator=torch_generator(cfg.seed, r, c, "batches"), round_=r)
            bodies.append(out.params[: head.start])
            sizes.append(len(exp.client_data[c][1]))
        w = torch.cat([weighted_mean(bodies, sizes), w0[head]])
    assert torch.allclose(result.server["params"], w, atol=1e-6, rtol=0)
    assert all(torch.equal(s["algorithm"]["head"], w0[head]) for s in result.client_states.values())
    assert result.rows[0]["bytes_up"] == 3 * 4 * head.start  # bodies only


def test_a_pass_trains_only_its_part(make_cfg):
    exp = build(make_cfg(*SMALL))
    w0 = get_flat(exp.task)
    trainer = Trainer(exp.task, exp.plan, exp.client_data[0], 0, 1, 1, None, None)
    head = trainer.head(1)
    after = trainer.run(w0, train=head, purpose="head").params
    assert torch.equal(after[: head.start], w0[: head.start]) and not torch.equal(after[head], w0[head])
    after = trainer.run(w0, train=slice(0, head.start)).params
    assert torch.equal(after[head], w0[head]) and not torch.equal(after[: head.start], w0[: head.start])
    assert all(p.requires_grad for p in exp.task.parameters()) and trainer.steps > 0


def _by_hand(exp, result, model_of):
    """personal_accuracy_mean and _min from each evaluated client's model on its own held-out data."""
    accs = [evaluate(exp.task, model_of(c), x, y)[0] for c, (x, y) in zip(exp.client_eval.clients, exp.client_eval.data)]
    return float(np.mean(accs)), float(np.min(accs))


@pytest.mark.parametrize("algorithm", ["ditto", "fedrep", "fedper"])
def test_personal_columns_score_each_clients_own_model(make_cfg, algorithm):
    cfg = make_cfg(*SMALL, "client_fraction=0.5", f"algorithm={algorithm}", "eval.per_client=true",
                   "algorithm.head_epochs=2" if algorithm != "ditto" else "algorithm.lam=0.1")
    exp, result = build(cfg), run(cfg)
    server, states = result.server["params"], result.client_states

    def model_of(c):  # never sampled: the global model (FedRep: with the server's, initial, head)
        own = states.get(c, {}).get("algorithm", {})
        if algorithm == "ditto":
            return own.get("personal", server)
        return server if "head" not in own else torch.cat([server[: -own["head"].numel()], own["head"]])

    row = result.rows[-1]
    assert (row["personal_accuracy_mean"], row["personal_accuracy_min"]) == pytest.approx(_by_hand(exp, result, model_of))
    assert row["clients_evaluated"] == 6 and row["personal_accuracy_mean"] > row["client_accuracy_mean"]


def test_finetuning_and_fedbn_personal_columns(make_cfg):
    fedavg = run(make_cfg(*SMALL, "eval.per_client=true"))
    assert "personal_accuracy_mean" not in fedavg.rows[-1]  # no personalization: the global model is everyone's
    tuned = run(make_cfg(*SMALL, "eval.per_client=true", "algorithm=finetune", "algorithm.epochs=2"))
    assert torch.equal(tuned.server["params"], fedavg.server["params"])  # training is FedAvg's
    assert tuned.rows[-1]["personal_accuracy_mean"] > tuned.rows[-1]["client_accuracy_mean"]
    fedbn = run(make_cfg(*SMALL, "eval.per_client=true", "model=mlp_bn", "task.local_buffers=true"))
    assert 0 <= fedbn.rows[-1]["personal_accuracy_min"] <= fedbn.rows[-1]["personal_accuracy_mean"] <= 1


def test_personal_state_is_checkpointed_and_resumes_exactly(tmp_path):
    from tests.conftest import compose_config

    args = [*SMALL, "client_fraction=0.5", "algorithm=ditto", "checkpoint_every=1", "eval.per_client=true"]
    whole = run(compose_config([*args, "rounds=3"], tmp_path / "whole"))
    run(compose_config([*args, "rounds=1"], tmp_path / "split"))
    split = run(compose_config([*args, "rounds=3"], tmp_path / "split"))
    assert torch.equal(split.server["params"], whole.server["params"])
    assert whole.client_states.keys() == split.client_states.keys()
    for c, state in whole.client_states.items():
        assert torch.equal(state["algorithm"]["personal"], split.client_states[c]["algorithm"]["personal"])
    assert split.rows[-1]["personal_accuracy_mean"] == whole.rows[-1]["personal_accuracy_mean"]


@pytest.mark.parametrize("overrides,message", [
    (["algorithm=ditto", "privacy=local_dp"], "declares local_passes of its own"),
    (["algorithm=fedrep", "backend=vectorized"], "declares local_passes"),
    (["algorithm=fedrep", "algorithm.head_layers=3"], r"algorithm.head_layers must be in \[1, 2\]"),
    (["algorithm=fedrep", "algorithm.variant=lg"], "algorithm.variant must be one of"),
    (["algorithm=ditto", "algorithm.lam=-1"], "algorithm.lam must be >= 0"),
    (["algorithm=finetune", "algorithm.epochs=0"], "algorithm.epochs must be an integer >= 1"),
    (["algorithm=ditto", "topology=gossip", "client_fraction=1"], "must declare plain_clients and plain_average"),
])
def test_bad_personalization_settings_are_refused(make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(make_cfg(*SMALL, *overrides))
