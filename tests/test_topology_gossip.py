"""Gossip: W and its spectral gap by hand, consensus speed, equality with FedAvg on the complete
graph, backends and resume, and refusals."""

import numpy as np
import pytest
import torch

from fedbench.errors import ConfigError
from fedbench.run import run
from fedbench.topology.graphs import adjacency, connected, mixing, spectral_gap

GOSSIP = ["topology=gossip", "client_fraction=1"]


def test_ring_of_four_by_hand():
    w = mixing(adjacency("ring", 4), "metropolis")
    third = 1 / 3  # every degree is 2: W_ij = 1 / (1 + 2) on edges, the rest (1/3) on the diagonal
    expected = np.array([[third, third, 0, third], [third, third, third, 0], [0, third, third, third], [third, 0, third, third]])
    assert np.allclose(w, expected)
    # circulant eigenvalues (1 + 2 cos(2 pi k / 4)) / 3 = 1, 1/3, -1/3, 1/3: |lambda_2| = 1/3
    assert spectral_gap(w) == pytest.approx(2 / 3)


def test_pure_gossip_shrinks_consensus_distance_at_the_spectral_rate():
    for graph in ("ring", "torus", "exponential", "star"):
        w = mixing(adjacency(graph, 12), "metropolis")
        gap = spectral_gap(w)
        x = np.random.default_rng(0).normal(size=(12, 5))
        start = ((x - x.mean(0)) ** 2).sum()
        for t in range(1, 11):
            x = w @ x
            assert ((x - x.mean(0)) ** 2).sum() <= (1 - gap) ** (2 * t) * start * (1 + 1e-9), graph


def test_graph_shapes():
    assert adjacency("complete", 5).sum() == 20 and adjacency("star", 5).sum() == 8
    assert adjacency("torus", 9).sum(1).tolist() == [4] * 9  # 3 x 3 torus: 4 neighbours each
    assert adjacency("exponential", 8).sum(1).tolist() == [5] * 8  # i +/- 1, 2, 4 (4 = -4 mod 8)
    peers = [np.flatnonzero(adjacency("one_peer_exponential", 8, round_=t)[0]).tolist() for t in (1, 2, 3, 4)]
    assert peers == [[1], [2], [4], [1]]
    assert mixing(adjacency("complete", 4), "uniform") == pytest.approx(np.full((4, 4), 0.25))
    assert not connected(np.zeros((3, 3), dtype=bool)) and connected(adjacency("ring", 7))


def test_complete_graph_with_uniform_weights_equals_fedavg(make_cfg):
    """Two clients of 719 samples each (equal weights): mixing on the complete graph is FedAvg's mean."""
    common = ["num_clients=2", "client_fraction=1", "rounds=3", "local_epochs=1"]
    gossip = run(make_cfg(*common, "topology=gossip", "topology.graph=complete", "topology.weights=uniform"))
    fedavg = run(make_cfg(*common))
    assert torch.allclose(gossip.server["params"], fedavg.server["params"], atol=1e-6, rtol=0)
    assert [r["test_accuracy"] for r in gossip.rows] == pytest.approx([r["test_accuracy"] for r in fedavg.rows], abs=1e-6)
    assert all(r["consensus_distance"] < 1e-10 for r in gossip.rows)


def test_gossip_run_columns_and_messages(make_cfg):
    result = run(make_cfg(*GOSSIP, "num_clients=6", "rounds=3", "local_epochs=1"))
    p = result.summary["num_params"]
    assert result.summary["topology"] == "gossip" and result.summary["spectral_gap"] == pytest.approx(1 / 3)  # ring of 6: 1 - (1 + 2 cos(pi/3)) / 3
    for r in result.rows:
        assert r["messages_up"] == 12 and r["bytes_up"] == 12 * p * 4 and r["messages_down"] == 0  # 2 per node
        assert r["consensus_distance"] > 0 and 0 <= r["node_accuracy_min"] <= r["node_accuracy_mean"] <= 1
    assert result.rows[-1]["test_accuracy"] > 0.5


@pytest.mark.parametrize("overrides,message", [
    (["client_fraction=0.5"], "client_fraction must be 1 with topology=gossip"),
    (["algorithm=scaffold"], "algorithm: topology=gossip runs decentralized local SGD"),
    (["server_optimizer=adam"], "algorithm: topology=gossip runs decentralized local SGD"),
    (["topology.graph=mesh"], "topology.graph must be one of ['ring', 'torus'"),
    (["topology.weights=random"], "topology.weights must be one of ['metropolis', 'uniform']"),
    (["topology.graph=torus", "num_clients=7"], "topology.graph=torus needs num_clients = a x b"),
    (["topology.graph=one_peer_exponential", "num_clients=6"], "num_clients must be a power of two"),
    (["topology.graph=erdos_renyi", "topology.p=0.01"], "topology.graph: the erdos_renyi graph on 20 nodes"),
    (["topology.graph=erdos_renyi", "topology.p=0"], "topology.p must be in (0, 1]"),
])
def test_bad_gossip_settings_are_refused_before_any_work(make_cfg, overrides, message):
    cfg = make_cfg(*GOSSIP, *[o for o in overrides if not o.startswith("client_fraction")],
                   *[o for o in overrides if o.startswith("client_fraction")])
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert message in str(err.value)
    assert not (__import__("pathlib").Path(cfg.output_dir) / "metrics.csv").exists()


@pytest.mark.slow
def test_gossip_forked_ddp_equals_inprocess_and_resumes_exactly(tmp_path):
    from tests.test_ddp import assert_ddp_and_resume_agree

    assert_ddp_and_resume_agree([*GOSSIP, "topology.graph=exponential", "num_clients=8", "local_epochs=1"], 3, 2, tmp_path)
    nodes = lambda p: torch.load(p / "checkpoint" / "checkpoint.pt", weights_only=True)["nodes"]  # noqa: E731
    assert torch.equal(nodes(tmp_path / "whole"), nodes(tmp_path / "split"))
