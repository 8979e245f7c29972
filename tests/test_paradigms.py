"""Centralized and data-parallel baselines through lightning.Trainer, and forked ddp workers."""

import csv

import pytest

from fedbench.errors import ConfigError
from fedbench.run import run
from tests.test_ddp import assert_matches_inprocess

BASE = ["rounds=6", "batch_size=20", "lr=0.1", "eval_every=1"]


def _rows(path):
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_data_parallel_two_ranks_reaches_centralized_accuracy(make_cfg):
    central = run(make_cfg("paradigm=centralized", *BASE))
    parallel = run(make_cfg("paradigm=data_parallel", "backend=ddp", "backend.workers=2", "backend.threads=1", *BASE))
    # stated tolerance: 2 points of test accuracy on digits' 359 test images after 6 epochs
    assert central.summary["final_accuracy"] > 0.9
    assert abs(parallel.summary["final_accuracy"] - central.summary["final_accuracy"]) <= 0.02
    rows = _rows(parallel.output_dir / "metrics.csv")
    steps = -(-719 // 10)  # DistributedSampler: ceil(1438 / 2) samples per rank, local batch 20 / 2
    assert [int(r["steps"]) for r in rows] == [steps] * 6
    p = parallel.summary["num_params"]
    # ring all-reduce of every step's P-float gradient: 2 (N-1) P 4 bytes per step (N = 2)
    assert parallel.summary["total_bytes_up"] + parallel.summary["total_bytes_down"] == 2 * 1 * p * 4 * steps * 6
    ranks = _rows(parallel.output_dir / "rank_times.csv")
    assert sorted({(r["round"], r["rank"]) for r in ranks}) == [(str(e), str(k)) for e in range(1, 7) for k in (0, 1)]
    assert central.summary["total_bytes_up"] == 0


def test_centralized_refuses_several_ranks(make_cfg, monkeypatch):
    monkeypatch.setenv("RANK", "0"), monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="paradigm=centralized runs in one process"):
        run(make_cfg("paradigm=centralized", "rounds=1"))


def test_bad_paradigm_and_workers_are_refused_early(make_cfg):
    with pytest.raises(ConfigError, match=r"paradigm must be one of \['federated', 'centralized', 'data_parallel', 'hybrid', 'pipeline'\]"):
        run(make_cfg("paradigm=gossip"))
    with pytest.raises(ConfigError, match="backend.workers must be null or an integer >= 1"):
        run(make_cfg("backend=ddp", "backend.workers=0"))


@pytest.mark.slow
def test_forked_workers_match_inprocess(tmp_path):
    args = ["rounds=3", "num_clients=10", "client_fraction=0.5", "partitioner=dirichlet", "algorithm=scaffold"]
    from tests.conftest import compose_config

    result = run(compose_config([*args, "backend=ddp", "backend.workers=2", "backend.threads=1"], tmp_path / "ddp"))
    assert result.summary["rounds_completed"] == 3
    assert_matches_inprocess(args, tmp_path / "ddp", tmp_path / "ref")
    ranks = _rows(tmp_path / "ddp" / "rank_times.csv")
    assert len(ranks) == 6 and {r["rank"] for r in ranks} == {"0", "1"}
    metrics = _rows(tmp_path / "ddp" / "metrics.csv")
    for m in metrics:  # the row's idle time is the ranks' summed barrier wait; comm the slowest collective
        mine = [r for r in ranks if r["round"] == m["round"]]
        assert float(m["idle_s"]) == pytest.approx(sum(float(r["wait_s"]) for r in mine))
        assert float(m["comm_s"]) == pytest.approx(max(float(r["comm_s"]) for r in mine))


def test_a_multirun_can_follow_a_one_rank_job_with_forked_ranks(make_cfg):
    # a Hydra multirun runs jobs in one process: the 1-rank job must leave no process group behind
    import torch.distributed as dist

    run(make_cfg("rounds=1", "backend=ddp", "backend.workers=1"))
    assert not dist.is_initialized()
    result = run(make_cfg("rounds=1", "backend=ddp", "backend.workers=2", "backend.threads=1"))
    assert result.summary["hardware"]["world_size"] == 2
