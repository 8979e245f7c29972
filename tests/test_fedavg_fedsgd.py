"""FedAvg and FedSGD: hand-computed server updates and the equivalences of McMahan et al. (2017)."""

import pytest
import torch
import torch.nn.functional as F

from fedbench.algorithms.base import LocalResult
from fedbench.algorithms.fedavg import fedavg
from fedbench.algorithms.fedsgd import fedsgd
from fedbench.build import build
from fedbench.errors import ConfigError
from fedbench.params import get_flat, set_flat
from fedbench.run import run

X0 = torch.tensor([1.0, 1.0])


def _local(client, params, n, grad=None):
    return LocalResult(client, params, n, steps=1, train_loss=0.0, compute_s=0.0, lr=0.1, grad=grad)


def _round(alg, locals_):
    server = alg.init(X0)
    uploads = [alg.client_upload(server, loc, {})[0] for loc in locals_]
    return alg.server_update(server, uploads)[0]["params"]


def test_fedavg_weights_is_sample_weighted_mean():
    got = _round(fedavg(), [_local(0, torch.tensor([0.0, 2.0]), 100), _local(1, torch.tensor([4.0, -2.0]), 300)])
    assert torch.allclose(got, torch.tensor([3.0, -1.0]))  # (100*[0,2] + 300*[4,-2]) / 400


def test_fedavg_pseudo_gradient_with_server_lr():
    locals_ = [_local(0, torch.tensor([0.0, 2.0]), 100), _local(1, torch.tensor([4.0, -2.0]), 300)]
    # deltas x - y: [1,-1] and [-3,3]; weighted mean [-2, 2]; x - 0.5 * [-2, 2] = [2, 0]
    assert torch.allclose(_round(fedavg("pseudo_gradient", 0.5), locals_), torch.tensor([2.0, 0.0]))
    assert torch.allclose(_round(fedavg("pseudo_gradient", 1.0), locals_), _round(fedavg(), locals_))


def test_fedsgd_gradient_server_step():
    locals_ = [_local(0, X0, 1, grad=torch.tensor([1.0, 0.0])), _local(1, X0, 3, grad=torch.tensor([0.0, 4.0]))]
    # x - lr * (1*[1,0] + 3*[0,4]) / 4 = [1,1] - 0.5 * [0.25, 3] = [0.875, -0.5]
    assert torch.allclose(_round(fedsgd("gradient", lr=0.5), locals_), torch.tensor([0.875, -0.5]))


@pytest.mark.parametrize("factory,field", [(lambda: fedavg(upload="grads"), "algorithm.upload"),
                                           (lambda: fedavg(server_lr=0), "algorithm.server_lr"),
                                           (lambda: fedsgd(upload="x"), "algorithm.upload")])
def test_bad_algorithm_options_name_the_field(factory, field):
    with pytest.raises(ConfigError, match=field):
        factory()


TOY = ["dataset=digits", "model=logreg", "num_clients=2", "client_fraction=1", "local_epochs=1",
       "batch_size=null", "lr=0.3"]


def test_fedsgd_gradient_and_weights_variants_agree(make_cfg):
    a = run(make_cfg(*TOY, "algorithm=fedsgd", "algorithm.upload=gradient", "rounds=3"))
    b = run(make_cfg(*TOY, "algorithm=fedsgd", "algorithm.upload=weights", "rounds=3"))
    assert torch.allclose(a.server["params"], b.server["params"], atol=1e-6, rtol=0)
    start = get_flat(build(make_cfg(*TOY, "algorithm=fedsgd")).task)
    assert (a.server["params"] - start).abs().max() > 1e-3  # the model did move


def test_fedavg_full_batch_one_epoch_equals_gradient_descent_on_union(make_cfg):
    cfg = make_cfg(*TOY, "algorithm=fedavg", "rounds=1", "partitioner=dirichlet", "partitioner.alpha=1.0")
    exp = build(cfg)
    x0 = get_flat(exp.task)
    # one full-batch GD step on the union of the clients' data, computed here with autograd
    set_flat(exp.task, x0)
    loss = F.cross_entropy(exp.task(exp.data.x_train), exp.data.y_train)
    grads = torch.autograd.grad(loss, list(exp.task.parameters()))
    expected = x0 - 0.3 * torch.cat([g.reshape(-1) for g in grads])
    result = run(cfg)
    assert sorted(len(p) for p in exp.parts) != [len(exp.data.y_train) // 2] * 2  # unequal clients: weighting matters
    assert torch.allclose(result.server["params"], expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("algorithm", ["fedavg", "fedsgd"])
def test_messages_and_bytes_per_round(make_cfg, algorithm):
    result = run(make_cfg(f"algorithm={algorithm}", "num_clients=10", "client_fraction=0.3", "rounds=2",
                          "local_epochs=1"))
    params = result.summary["num_params"]
    assert params == 64 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10
    for row in result.rows:
        assert row["clients"] == 3
        assert row["messages_up"] + row["messages_down"] == 2 * 3
        assert row["bytes_up"] == row["bytes_down"] == 3 * params * 4
    assert result.rows[-1]["cum_bytes_up"] == 2 * 3 * params * 4
    # default network: star, 1 ms latency, 1 Gbit/s -> 2 alpha + (up + down) / B
    assert result.rows[-1]["comm_sim_s"] == pytest.approx(2e-3 + 2 * 3 * params * 4 / 1.25e8)
