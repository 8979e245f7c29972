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

    with mock.patch("fedbench.run.build", side_effect=AssertionError("a finished run was built again")):
        assert run(cfg).rows == result.rows  # finished: the rerun is skipped


def test_a_diverging_run_stops_and_says_so(make_cfg):
    result = run(make_cfg("rounds=20", "lr=1e6"))
    assert result.summary["diverged"] is True and result.summary["rounds_completed"] < 20
    assert math.isnan(result.rows[-1]["train_loss"])
    assert result.summary["hardware"]["cpu_count"] >= 1 and result.summary["num_train"] == 1438
