"""Robustness end to end: robust aggregators under 20% sign-flip clients on digits keep the clean
accuracy while the mean collapses; ALIE and IPM run on every robust rule; client dropout counts
messages and leaves the model unchanged when nobody reports; bad combinations are refused."""

import logging
import re

import pytest
import torch

from fedbench.errors import ConfigError
from fedbench.stages import dropped_out
from fedbench.run import run
from fedbench.sampling import sample_clients

SETTING = ["rounds=20", "num_clients=20", "client_fraction=0.5"]  # m = 10 uploads, ~2 of them Byzantine
FLIP = ["attack=sign_flip", "attack.fraction=0.2", "attack.scale=4"]


@pytest.mark.slow
def test_robust_aggregators_keep_accuracy_under_sign_flip_where_the_mean_collapses(make_cfg):
    clean = run(make_cfg(*SETTING)).summary["final_accuracy"]
    mean = run(make_cfg(*SETTING, *FLIP)).summary["final_accuracy"]
    assert clean > 0.93
    assert clean - mean > 0.3, (clean, mean)
    for rule in ("median", "trimmed_mean", "krum"):
        robust = run(make_cfg(*SETTING, *FLIP, f"aggregator={rule}"))
        assert clean - robust.summary["final_accuracy"] < 0.06, (rule, clean, robust.summary["final_accuracy"])
        assert robust.summary["byzantine_clients"] == sorted(robust.summary["byzantine_clients"])
        assert sum(row["byzantine"] for row in robust.rows) > 0  # attackers did report


@pytest.mark.parametrize("attack", ["alie", "ipm"])
@pytest.mark.parametrize("rule", ["mean", "median", "trimmed_mean", "krum", "geometric_median", "centered_clipping"])
def test_alie_and_ipm_run_against_every_aggregator(make_cfg, attack, rule):
    result = run(make_cfg("rounds=2", "local_epochs=1", f"attack={attack}", f"aggregator={rule}"))
    assert len(result.rows) == 2 and torch.isfinite(result.server["params"]).all()
    assert result.summary["attack"] == attack and result.summary["aggregator"] == rule


def test_dropout_half_of_the_messages_up(make_cfg):
    result = run(make_cfg("dropout=0.5", "rounds=10", "local_epochs=1", "num_clients=20", "client_fraction=0.5"))
    down = sum(r["messages_down"] for r in result.rows)
    up = sum(r["messages_up"] for r in result.rows)
    assert down == 100 and 0.35 < up / down < 0.65, (up, down)
    # each round: the sampled clients got the model; the ones that did not drop out reported
    for r in result.rows:
        failed = dropped_out(sample_clients(20, 0.5, 0, r["round"]), 0.5, 0, r["round"])
        assert r["messages_up"] == 10 - len(failed)


def test_a_round_where_every_client_drops_leaves_the_model_unchanged(make_cfg, caplog):
    args = ["dropout=0.7", "num_clients=10", "client_fraction=0.2", "local_epochs=1"]
    empty = next(r for r in range(2, 30) if len(dropped_out(sample_clients(10, 0.2, 0, r), 0.7, 0, r)) == 2)
    before = run(make_cfg(*args, f"rounds={empty - 1}"))
    with caplog.at_level(logging.WARNING, logger="fedbench"):
        after = run(make_cfg(*args, f"rounds={empty}"))
    assert torch.equal(before.server["params"], after.server["params"])
    assert after.rows[-1]["messages_up"] == 0 and after.rows[-1]["messages_down"] == 2
    assert f"round {empty}: none of the 2 sampled clients reported" in caplog.text


def test_dropout_on_the_hierarchical_topology_counts_per_tier(make_cfg):
    result = run(make_cfg("topology=hierarchical", "dropout=0.5", "rounds=3", "local_epochs=1", "num_clients=12",
                          "client_fraction=0.5"))
    for r in result.rows:
        assert r["messages_down"] == 12 and r["messages_up"] < 12 and r["cloud_messages_up"] == 2


@pytest.mark.parametrize("overrides,message", [
    (["dropout=1.0"], "dropout must be in [0, 1) (got 1.0)"),
    (["dropout=-0.1"], "dropout must be in [0, 1) (got -0.1)"),
    (["aggregator=krum", "aggregator.f=2"], "aggregator.f: krum needs n > 2f + 2 uploads per aggregation; this run "
                                            "aggregates n = 5"),
    (["aggregator=trimmed_mean", "aggregator.beta=0.5"], "aggregator.beta must be in [0, 0.5)"),
    (["aggregator=median", "algorithm=scaffold"], "aggregator: algorithm scaffold combines its uploads in its own way"),
    (["aggregator=median", "algorithm=fednova"], "aggregator: algorithm fednova combines its uploads in its own way"),
    (["aggregator=median", "topology=gossip", "client_fraction=1"], "aggregator must be mean with topology=gossip"),
    (["dropout=0.2", "topology=async"], "dropout must be 0 with topology=async"),
    (["paradigm=centralized", "attack=sign_flip"], "attack must be none with paradigm=centralized"),
    (["paradigm=data_parallel", "privacy=dp_fedavg"], "privacy must be none with paradigm=data_parallel"),
])
def test_bad_robustness_settings_are_refused_before_any_work(make_cfg, overrides, message):
    cfg = make_cfg(*overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        run(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["attack=alie", "aggregator=trimmed_mean", "dropout=0.3", "num_clients=10", "client_fraction=0.6"],
    ["privacy=dp_fedavg", "privacy.noise_multiplier=0.5", "attack=gaussian", "num_clients=10", "client_fraction=0.5"],
    ["privacy=local_dp", "attack=label_flip", "num_clients=6", "client_fraction=0.5", "local_epochs=1"],
], ids=["alie-trimmed-dropout", "dp_fedavg-gaussian", "local_dp-label_flip"])
def test_threat_models_agree_across_backends_and_resume_bit_identically(tmp_path, args):
    from tests.test_ddp import assert_ddp_and_resume_agree

    whole, resumed = assert_ddp_and_resume_agree([*args, "local_epochs=1"], 3, 1, tmp_path)
    assert [r.get("epsilon") for r in whole.rows] == [r.get("epsilon") for r in resumed.rows]
