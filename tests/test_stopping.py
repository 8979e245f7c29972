"""Runs end early when told to (target reached) or when training diverges; reruns skip them."""

import math

from fedbench.run import run


def test_stop_at_target_ends_at_the_first_round_reaching_it(make_cfg):
    # checkpoints every 7 rounds: the early stop must still leave a checkpoint, or a rerun would not skip it
    cfg = make_cfg("rounds=30", "target_accuracy=0.8", "stop_at_target=true", "checkpoint_every=7")
    result = run(cfg)
    reached = result.summary["rounds_to_target"]
    assert reached is not None and result.summary["rounds_completed"] == reached < 30
    assert result.rows[-1]["test_accuracy"] >= 0.8 > max(r["test_accuracy"] for r in result.rows[:-1])
    from unittest import mock

    with mock.patch("fedbench.federated.build", side_effect=AssertionError("a finished run was built again")):
        assert run(cfg).rows == result.rows  # finished: the rerun is skipped


def test_a_diverging_run_stops_and_says_so(make_cfg):
    result = run(make_cfg("rounds=20", "lr=1e6"))
    assert result.summary["diverged"] is True and result.summary["rounds_completed"] < 20
    assert math.isnan(result.rows[-1]["train_loss"])
    assert result.summary["hardware"]["cpu_count"] >= 1 and result.summary["num_train"] == 1438


def test_a_huge_finite_loss_counts_as_divergence_and_the_last_round_is_evaluated(make_cfg):
    """FedAdam with server lr 1e4 (measured: train loss 3.7e31 in round 2) used to be recorded as healthy."""
    result = run(make_cfg("algorithm=fedadam", "server_optimizer.lr=1e4", "rounds=10", "eval_every=5"))
    assert result.summary["diverged"] is True and result.summary["rounds_completed"] == 2
    assert result.rows[-1]["train_loss"] > 1000 and not math.isnan(result.rows[-1]["test_accuracy"])
    lenient = run(make_cfg("algorithm=fedadam", "server_optimizer.lr=1e4", "rounds=3", "diverge_loss=null"))
    assert lenient.summary["diverged"] is False and lenient.summary["rounds_completed"] == 3


def test_the_centralized_baseline_stops_on_divergence(make_cfg):
    result = run(make_cfg("paradigm=centralized", "rounds=5", "lr=1e6"))
    assert result.summary["diverged"] is True and result.summary["rounds_completed"] < 5


def test_a_diverged_command_exits_3_with_its_records_written(tmp_path):
    from tests.conftest import ROOT
    from tests.test_end_to_end import _cli

    proc = _cli("lr=1e6", "rounds=5", f"hydra.run.dir={tmp_path}", cwd=ROOT)
    assert proc.returncode == 3 and "the run diverged after 1 round(s)" in proc.stderr
    assert (tmp_path / "summary.json").exists() and (tmp_path / "metrics.csv").exists()
