"""Gradient tracking, EXTRA and push-sum: exactness on a decentralized least-squares problem (full gradients, a
constant step), push-sum's de-biasing on directed graphs, the directed graphs themselves, end-to-end runs on gossip
with their traffic, resume, and the refusals their declarations produce."""

import numpy as np
import pytest
import torch

from fedbench.algorithms.decentralized import exact_mix
from fedbench.algorithms.extra import extra
from fedbench.algorithms.gradient_tracking import gradient_tracking
from fedbench.algorithms.pushsum import pushsum
from fedbench.errors import ConfigError
from fedbench.run import run
from fedbench.topology.graphs import adjacency, column_mixing, graph_mixing, mixing, properties

GOSSIP = ["topology=gossip", "client_fraction=1", "num_clients=8", "rounds=2", "local_epochs=1", "checkpoint_every=0"]


def _least_squares(n: int = 8, m: int = 12, d: int = 5, seed: int = 0):
    """Node i's loss f_i(x) = ||A_i x - b_i||^2 / (2 m), a different quadratic per node; the optimum of their sum."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, m, d, generator=gen, dtype=torch.float64)
    b = torch.randn(n, m, generator=gen, dtype=torch.float64) + 3 * torch.randn(n, 1, generator=gen, dtype=torch.float64)
    grad = lambda x: torch.einsum("nmd,nm->nd", a, torch.einsum("nmd,nd->nm", a, x) - b) / m  # noqa: E731
    optimum = torch.linalg.solve(torch.einsum("nmd,nme->de", a, a), torch.einsum("nmd,nm->d", a, b))
    lipschitz = max(float(torch.linalg.eigvalsh(a[i].T @ a[i] / m).max()) for i in range(n))
    return grad, optimum, lipschitz


def _local_step(alg, x, node_state, grad, lr):
    """One full-batch gradient step per node on f_i plus the algorithm's own local term (its ``local_loss`` on the
    start state gossip gives each node), as gossip's local work takes it."""
    g = grad(x)
    if alg.local_loss is not None:
        for i in range(len(x)):
            w = x[i].clone().requires_grad_(True)
            start = {"params": x[i], **{k: node_state[k][i] for k in alg.decentralized.local_keys}}
            (extra_grad,) = torch.autograd.grad(alg.local_loss(w, start, {}), w)
            g[i] = g[i] + extra_grad
    return x - lr * g


def _run(alg, w, grad, lr, rounds, x0):
    """``rounds`` rounds: local step, then the method's node update (D-PSGD: plain gossip when ``alg`` is None)."""
    x, mix = x0.clone(), exact_mix(w)
    state = alg.decentralized.init(x) if alg is not None else {}
    eta = torch.full((len(x),), lr, dtype=torch.float64)
    for _ in range(rounds):
        if alg is None:
            x = mix("params", x - lr * grad(x))
        else:
            x, state = alg.decentralized.step(x, _local_step(alg, x, state, grad, lr), eta, mix, state)
    return x


def test_gradient_tracking_and_extra_are_exact_where_dpsgd_stalls():
    grad, optimum, lipschitz = _least_squares()
    w = torch.from_numpy(mixing(adjacency("ring", 8), "metropolis"))
    lr = 0.3 / lipschitz
    x0 = torch.zeros(8, 5, dtype=torch.float64)
    gap = lambda x: float((x - optimum).norm(dim=1).max())  # noqa: E731 - the worst node's distance
    dpsgd_a, dpsgd_b = gap(_run(None, w, grad, lr, 3000, x0)), gap(_run(None, w, grad, lr, 6000, x0))
    assert dpsgd_a > 1e-2 and dpsgd_b == pytest.approx(dpsgd_a, rel=1e-6)  # a fixed point away from the optimum
    for alg in (gradient_tracking(), extra()):
        assert gap(_run(alg, w, grad, lr, 3000, x0)) < 1e-8, alg.name


def test_extra_is_the_papers_two_step_recursion():
    """x^1 = W x^0 - a g(x^0); x^{k+2} = (I + W) x^{k+1} - (I + W)/2 x^k - a (g(x^{k+1}) - g(x^k))."""
    grad, _, lipschitz = _least_squares(seed=1)
    w = torch.from_numpy(mixing(adjacency("exponential", 8), "metropolis"))
    lr, x0 = 0.3 / lipschitz, torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    prev, cur = x0, w @ x0 - lr * grad(x0)
    for _ in range(20):
        prev, cur = cur, cur + w @ cur - (prev + w @ prev) / 2 - lr * (grad(cur) - grad(prev))
    assert torch.allclose(_run(extra(), w, grad, lr, 21, x0), cur, atol=1e-12, rtol=0)


def test_gradient_tracking_is_atc_diging():
    """x^{k+1} = W (x^k - a y^k), y^{k+1} = W y^k + g(x^{k+1}) - g(x^k), y^0 = g(x^0)."""
    grad, _, lipschitz = _least_squares(seed=3)
    w = torch.from_numpy(mixing(adjacency("torus", 8), "metropolis"))
    lr, x = 0.3 / lipschitz, torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    x0, y = x.clone(), grad(x)
    for _ in range(20):
        new = w @ (x - lr * y)
        x, y = new, w @ y + grad(new) - grad(x)
    assert torch.allclose(_run(gradient_tracking(), w, grad, lr, 20, x0), x, atol=1e-12, rtol=0)


def _uneven_directed_ring(n: int = 6) -> torch.Tensor:
    """Column-stochastic, not row-stochastic: node j keeps a_j and pushes 1 - a_j to j + 1."""
    keep = np.linspace(0.2, 0.8, n)
    p = np.diag(keep)
    p[(np.arange(n) + 1) % n, np.arange(n)] = 1 - keep
    return torch.from_numpy(p)


@pytest.mark.parametrize("make", [_uneven_directed_ring, lambda: torch.from_numpy(graph_mixing(
    "directed_erdos_renyi", 6, p=0.4, seed=1))])
def test_push_sum_recovers_the_average_exactly(make):
    p = make()
    assert torch.allclose(p.sum(0), torch.ones(6, dtype=torch.float64)) and not torch.allclose(p.sum(1), p.sum(0))
    x0 = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    node, mix = pushsum().decentralized, exact_mix(p)
    x, state = x0.clone(), node.init(x0)
    for _ in range(400):  # no local work: y = x
        x, state = node.step(x, x, torch.zeros(6, dtype=torch.float64), mix, state)
    assert torch.allclose(x, x0.mean(0).expand(6, 3), atol=1e-12, rtol=0)
    assert float(state["weights"].sum()) == pytest.approx(6) and not torch.allclose(state["weights"], torch.ones(6, 1, dtype=torch.float64))
    assert not torch.allclose(state["numerators"], x0.mean(0).expand(6, 3), atol=1e-3)  # de-biasing is what does it


def test_directed_graphs():
    peers = [np.flatnonzero(adjacency("directed_exponential", 8, round_=t)[0]).tolist() for t in (1, 2, 3, 4)]
    assert peers == [[1], [2], [4], [1]]  # one peer 2^k ahead, k cycling over 0..2
    w = graph_mixing("directed_exponential", 8, round_=2)
    assert w[2, 0] == 0.5 and w[0, 0] == 0.5 and w[0, 2] == 0  # 0 sends half to 2, not back
    assert np.allclose(column_mixing(adjacency("directed_ring", 4)).sum(0), 1)
    assert properties("ring", 8) == {"symmetric", "static", "doubly_stochastic", "column_stochastic"}
    assert properties("one_peer_exponential", 8) == {"symmetric", "doubly_stochastic", "column_stochastic"}
    assert properties("directed_exponential", 8) == {"doubly_stochastic", "column_stochastic"}
    assert properties("directed_erdos_renyi", 8, p=0.4, seed=1) == {"static", "column_stochastic"}


def test_each_method_runs_on_gossip_with_its_traffic(make_cfg):
    dpsgd = run(make_cfg(*GOSSIP))
    p, messages = dpsgd.summary["num_params"], dpsgd.rows[0]["messages_up"]
    assert dpsgd.rows[0]["bytes_up"] == messages * 4 * p
    tracking = run(make_cfg(*GOSSIP, "algorithm=gradient_tracking"))
    assert tracking.rows[0]["bytes_up"] == messages * 8 * p  # the model and the tracker
    exact = run(make_cfg(*GOSSIP, "algorithm=extra"))
    assert exact.rows[0]["bytes_up"] == messages * 4 * p
    push = run(make_cfg(*GOSSIP, "algorithm=pushsum", "topology.graph=directed_exponential"))
    assert push.rows[0]["messages_up"] == 8 and push.rows[0]["bytes_up"] == 8 * (4 * p + 8)  # one peer; x_i and w_i
    for result in (tracking, exact, push):
        assert len(result.rows) == 2 and result.rows[-1]["test_accuracy"] > 0.3
        assert result.rows[-1]["consensus_distance"] > 0
    assert push.summary["spectral_gap"] == pytest.approx(1.0)  # one period of the one-peer graph averages exactly


def test_push_sum_on_an_uneven_directed_graph_and_resume(make_cfg, tmp_path):
    args = [*GOSSIP, "algorithm=pushsum", "topology.graph=directed_erdos_renyi", "topology.p=0.3", "checkpoint_every=1"]
    whole = run(make_cfg(*args, "rounds=3"))
    weights = torch.load(whole.output_dir / "checkpoint" / "checkpoint.pt", weights_only=True)["node_state"]["weights"]
    assert not torch.allclose(weights, torch.ones_like(weights)) and float(weights.sum()) == pytest.approx(8)
    from tests.conftest import compose_config

    run(compose_config([*args, "rounds=1"], tmp_path / "split"))
    split = run(compose_config([*args, "rounds=3"], tmp_path / "split"))  # resumes after round 1
    assert torch.equal(split.server["params"], whole.server["params"])


def test_methods_compose_with_choco_compression(make_cfg):
    for name in ("gradient_tracking", "extra"):
        result = run(make_cfg(*GOSSIP, f"algorithm={name}", "compressor=topk"))
        assert result.rows[-1]["compression_ratio"] > 1 and np.isfinite(result.rows[-1]["train_loss"]), name


@pytest.mark.parametrize("overrides,message", [
    (["algorithm=gradient_tracking", "topology=star", "client_fraction=0.5"], "declare runs_node_updates (gossip)"),
    (["algorithm=extra", "topology=async", "client_fraction=0.5", "topology.concurrency=4", "topology.buffer_size=2"], "declare runs_node_updates (gossip)"),
    (["algorithm=extra", "topology.graph=one_peer_exponential"], "needs a static mixing matrix"),
    (["algorithm=extra", "topology.graph=directed_ring"], "needs a symmetric mixing matrix"),
    (["algorithm=gradient_tracking", "topology.graph=directed_erdos_renyi", "topology.p=0.3"],
     "needs a doubly_stochastic mixing matrix"),
    (["topology.graph=directed_erdos_renyi", "topology.p=0.3"], "algorithm fedavg needs a doubly_stochastic"),
    (["algorithm=pushsum", "compressor=topk"], "algorithm pushsum does not declare compresses"),
    (["algorithm=pushsum", "topology.graph=directed_erdos_renyi", "topology.p=0.02"], "is disconnected"),
    (["algorithm=extra", "algorithm.max_local_steps=0"], "algorithm.max_local_steps must be null"),
])
def test_refusals_name_the_declaration(make_cfg, overrides, message):
    topo = [o for o in overrides if o.startswith("topology=")]
    base = [o for o in GOSSIP if not (topo and o in ("topology=gossip", "client_fraction=1"))]
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(make_cfg(*base, *overrides))
