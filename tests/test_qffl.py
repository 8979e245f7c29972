"""q-FedAvg: its server step by hand for two clients (Li et al. 2020, Algorithm 2), q = 0 is FedAvg, the start loss
the clients report, and the fairness columns."""

import pytest
import torch

from fedbench.algorithms.base import LocalResult
from fedbench.algorithms.qffl import qffl
from fedbench.build import build
from fedbench.client import run_client
from fedbench.errors import ConfigError
from fedbench.local import evaluate
from fedbench.params import get_flat
from fedbench.run import run
from tests.algo_toy import t


def _result(client, params, start_loss, lr=0.1):
    return LocalResult(client, params, 1, 1, 0.0, 0.0, lr, start_loss=start_loss)


def test_server_step_by_hand_for_two_clients():
    """w = (1, 2), w_1 = (0.5, 2), w_2 = (1, 1), L = 1/lr = 10, F_1 = 0.5, F_2 = 2, q = 2:
    dw_1 = (5, 0), dw_2 = (0, 10); Delta_1 = 0.25 dw_1 = (1.25, 0), Delta_2 = 4 dw_2 = (0, 40);
    h_1 = 2 * 0.5 * 25 + 10 * 0.25 = 27.5, h_2 = 2 * 2 * 100 + 10 * 4 = 440; w' = w - (1.25, 40) / 467.5."""
    alg = qffl(q=2.0)
    server = {"params": t(1.0, 2.0)}
    uploads = [alg.client_upload(server, _result(0, t(0.5, 2.0), 0.5), {})[0],
               alg.client_upload(server, _result(1, t(1.0, 1.0), 2.0), {})[0]]
    assert float(uploads[0].tensors["h"]) == pytest.approx(27.5, rel=1e-6)
    assert float(uploads[1].tensors["h"]) == pytest.approx(440.0, rel=1e-6)
    new, metrics = alg.server_update(server, uploads)
    assert torch.allclose(new["params"], t(1 - 1.25 / 467.5, 2 - 40 / 467.5), atol=1e-6, rtol=0)
    assert metrics["qffl_h"] == pytest.approx(467.5, rel=1e-6)
    # an explicit L instead of 1 / lr: q = 1, L = 4: Delta = F L (w - w_k), h = L^2 ||w - w_k||^2 + L F
    one = qffl(q=1.0, lipschitz=4.0)
    up = one.client_upload(server, _result(0, t(0.5, 2.0), 0.5), {})[0]
    assert torch.allclose(up.tensors["delta"], t(1.0, 0.0)) and float(up.tensors["h"]) == pytest.approx(4 + 2)


def test_q_zero_is_fedavg_with_equal_clients(make_cfg):
    """Two clients of 719 samples each (equal FedAvg weights): q = 0 gives h_k = L, the plain mean of the models."""
    common = ["num_clients=2", "client_fraction=1", "rounds=3", "local_epochs=1", "checkpoint_every=0"]
    fedavg = run(make_cfg(*common))
    zero = run(make_cfg(*common, "algorithm=qffl", "algorithm.q=0"))
    assert torch.allclose(zero.server["params"], fedavg.server["params"], atol=1e-6, rtol=0)
    assert [r["test_accuracy"] for r in zero.rows] == pytest.approx([r["test_accuracy"] for r in fedavg.rows], abs=1e-6)
    assert zero.rows[0]["bytes_up"] == fedavg.rows[0]["bytes_up"] + 2 * 4  # h_k: one float per upload


def test_clients_report_their_loss_at_the_start_model(make_cfg):
    cfg = make_cfg("algorithm=qffl", "num_clients=4")
    exp = build(cfg)
    w = get_flat(exp.task)
    res = run_client(exp.task, exp.algorithm, exp.plan, exp.client_data[1], {"params": w}, {}, 1, 1, 1)
    assert res.start_loss == evaluate(exp.task, w, *exp.client_data[1])[1]
    assert res.train_loss != res.start_loss and res.steps > 0


def test_the_row_has_the_variance_of_client_accuracies(make_cfg):
    result = run(make_cfg("algorithm=qffl", "num_clients=6", "rounds=2", "local_epochs=1", "eval.per_client=true",
                          "partitioner=shards", "checkpoint_every=0"))
    row = result.rows[-1]
    assert row["client_accuracy_var"] >= 0 and row["qffl_h"] > 0 and row["clients_evaluated"] == 6


@pytest.mark.parametrize("overrides,message", [
    (["algorithm.q=-1"], "algorithm.q must be >= 0"),
    (["algorithm.lipschitz=0"], r"algorithm.lipschitz must be null \(1 / lr\) or > 0"),
    (["backend=vectorized"], "declares start_loss"),
    (["aggregator=median"], "does not declare averages_uploads"),
    (["server_optimizer=adam"], "takes no server optimizer"),
])
def test_bad_settings_are_refused(make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(make_cfg("algorithm=qffl", *overrides))
