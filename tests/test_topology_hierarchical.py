"""Hierarchical (HierFAVG): one edge and one edge round is the star exactly; tier message counts by
hand; backends, resume and refusals."""

import pytest
import torch

from fedbench.errors import ConfigError
from fedbench.run import run
from fedbench.topology.hierarchical import assign_edges

HIER = ["topology=hierarchical"]


def test_one_edge_one_edge_round_is_the_star_exactly(make_cfg):
    common = ["algorithm=scaffold", "num_clients=10", "client_fraction=0.3", "rounds=3", "local_epochs=1",
              "partitioner=dirichlet"]
    star = run(make_cfg(*common))
    hier = run(make_cfg(*common, *HIER, "topology.num_edges=1", "topology.edge_rounds=1"))
    assert torch.equal(star.server["params"], hier.server["params"])
    for a, b in zip(star.rows, hier.rows):
        for key in ("test_accuracy", "train_loss", "messages_up", "messages_down", "bytes_up", "bytes_down", "steps"):
            assert a[key] == b[key], key


def test_tier_message_counts_by_hand(make_cfg):
    # 12 clients, C = 0.5: 6 sampled per edge round, 3 edge rounds per cloud round, 3 edges
    result = run(make_cfg(*HIER, "num_clients=12", "client_fraction=0.5", "topology.num_edges=3",
                          "topology.edge_rounds=3", "rounds=2", "local_epochs=1"))
    p = result.summary["num_params"]
    for r in result.rows:
        assert r["clients"] == 18 and r["messages_up"] == 18 and r["messages_down"] == 18  # client <-> edge
        assert r["bytes_up"] == r["bytes_down"] == 18 * p * 4
        assert r["cloud_messages_up"] == r["cloud_messages_down"] == 3  # edge <-> cloud, once per cloud round
        assert r["cloud_bytes_up"] == r["cloud_bytes_down"] == 3 * p * 4
    assert result.rows[-1]["test_accuracy"] > 0.5


def test_edges_are_balanced_and_seeded():
    edges = assign_edges(10, 3, seed=4)
    assert sorted(edges.count(e) for e in range(3)) == [3, 3, 4]
    assert edges == assign_edges(10, 3, seed=4) and edges != assign_edges(10, 3, seed=5)


@pytest.mark.parametrize("overrides,message", [
    (["topology.num_edges=30"], "topology.num_edges must be <= num_clients (20)"),
    (["topology.num_edges=0"], "topology.num_edges must be an integer >= 1"),
    (["topology.edge_rounds=0"], "topology.edge_rounds must be an integer >= 1"),
])
def test_bad_hierarchical_settings_are_refused(make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(make_cfg(*HIER, *overrides))


@pytest.mark.slow
def test_hierarchical_forked_ddp_equals_inprocess_and_resumes_exactly(tmp_path):
    from tests.test_ddp import assert_ddp_and_resume_agree

    args = [*HIER, "algorithm=scaffold", "num_clients=10", "client_fraction=0.5", "local_epochs=1"]
    assert_ddp_and_resume_agree(args, 3, 2, tmp_path)
    edges = lambda p: torch.load(p / "checkpoint" / "checkpoint.pt", weights_only=True)["edges"]  # noqa: E731
    assert all(torch.equal(a["c"], b["c"]) for a, b in zip(edges(tmp_path / "whole"), edges(tmp_path / "split")))
