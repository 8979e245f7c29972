"""q-FedAvg (Li et al., ICLR 2020): the server step by hand on two toy clients, q = 0 is the unweighted mean of the
clients' models, the loss at the start model is what the client sends, and a run learns."""

import pytest
import torch

from fedbench.algorithms.qfedavg import EPS, qfedavg
from fedbench.errors import ConfigError
from fedbench.run import run
from tests.algo_toy import close, play, t


def _result(client, params, loss, n=1):
    from tests.algo_toy import local

    out = local(client, params, n=n)
    return type(out)(**{**out.__dict__, "start_loss": loss})


def test_the_server_step_by_hand():
    q, lr = 2.0, 0.5  # L = 2
    alg = qfedavg(q=q, lr=lr)
    server = alg.init(t(1.0, 1.0))
    new = play(alg, server, {}, [_result(0, t(0.0, 1.0), 3.0), _result(1, t(1.0, 3.0), 1.0, n=50)])
    # client 0: grad = L (w - y) = (2, 0), F = 3: Delta = 9 (2, 0) = (18, 0), h = q F ||grad||^2 + L F^q = 2*3*4 + 2*9
    # client 1: grad = (0, -4), F = 1: Delta = (0, -4), h = 2*1*16 + 2*1 = 34; sample counts play no part
    f0, f1 = 3.0 + EPS, 1.0 + EPS
    h = q * f0 * 4 + 2 * f0**q + q * f1 * 16 + 2 * f1**q
    expected = t(1.0, 1.0) - torch.tensor([2 * f0**q, -4 * f1**q]) / h
    assert close(new["params"], expected)


def test_q_zero_steps_to_the_unweighted_mean_of_the_clients_models():
    alg = qfedavg(q=0.0, lr=0.1)
    server = alg.init(t(0.0, 0.0))
    new = play(alg, server, {}, [_result(0, t(1.0, 2.0), 0.7, n=1), _result(1, t(3.0, -2.0), 2.5, n=99)])
    assert close(new["params"], t(2.0, 0.0), tol=1e-5)


def test_each_client_sends_its_loss_at_the_start_model_and_the_run_learns(make_cfg, monkeypatch):
    import fedbench.algorithms.qfedavg as module

    seen = []
    original = module.qfedavg

    def spy(**kwargs):
        alg = original(**kwargs)

        def upload(server, local, client):
            seen.append(local.start_loss)
            return alg.client_upload(server, local, client)

        return type(alg)(**{**alg.__dict__, "client_upload": upload})

    monkeypatch.setattr(module, "qfedavg", spy)
    result = run(make_cfg("algorithm=qfedavg", "rounds=3", "lr=0.05", "num_clients=4", "client_fraction=1"))
    assert len(seen) == 12 and all(2.0 < loss < 2.5 for loss in seen[:4])  # ln 10 ~ 2.3 at the initial model
    assert result.rows[-1]["test_accuracy"] > result.rows[0]["test_accuracy"]


def test_negative_q_is_rejected():
    with pytest.raises(ConfigError, match="algorithm.q must be >= 0"):
        qfedavg(q=-1)


def test_q_zero_is_fedavg_with_equal_clients(make_cfg):
    """Two clients of 719 samples each (equal FedAvg weights): q = 0 gives h_k = L, the plain mean of the models."""
    common = ["num_clients=2", "client_fraction=1", "rounds=3", "local_epochs=1", "checkpoint_every=0"]
    fedavg = run(make_cfg(*common))
    zero = run(make_cfg(*common, "algorithm=qfedavg", "algorithm.q=0"))
    assert torch.allclose(zero.server["params"], fedavg.server["params"], atol=1e-6, rtol=0)
    assert [r["test_accuracy"] for r in zero.rows] == pytest.approx([r["test_accuracy"] for r in fedavg.rows], abs=1e-6)
    assert zero.rows[0]["bytes_up"] == fedavg.rows[0]["bytes_up"] + 2 * 4  # h_k: one float per upload


def test_the_start_loss_is_the_task_loss_of_the_server_model_on_the_client_s_data(make_cfg):
    from fedbench.build import build
    from fedbench.client import run_client
    from fedbench.local import evaluate
    from fedbench.params import get_flat

    exp = build(make_cfg("algorithm=qfedavg", "num_clients=4"))
    w = get_flat(exp.task)
    res = run_client(exp.task, exp.algorithm, exp.plan, exp.client_data[1], {"params": w}, {}, 1, 1, 1)
    assert res.start_loss == evaluate(exp.task, w, *exp.client_data[1])[1]
    assert res.train_loss != res.start_loss and res.steps > 0


def test_the_row_has_the_variance_of_client_accuracies(make_cfg):
    result = run(make_cfg("algorithm=qfedavg", "num_clients=6", "rounds=2", "local_epochs=1", "eval.per_client=true",
                          "partitioner=shards", "checkpoint_every=0"))
    row = result.rows[-1]
    assert row["client_accuracy_var"] >= 0 and row["qffl_h"] > 0 and row["clients_evaluated"] == 6


def test_vectorized_clients_report_the_same_start_loss_and_step(make_cfg):
    common = ["algorithm=qfedavg", "algorithm.q=1", "num_clients=4", "client_fraction=1", "rounds=2",
              "local_epochs=1", "checkpoint_every=0"]
    seq, vec = run(make_cfg(*common)), run(make_cfg(*common, "backend=vectorized"))
    assert torch.allclose(seq.server["params"], vec.server["params"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("overrides,message", [
    (["aggregator=median"], "does not declare averages_uploads"),
    (["server_optimizer=adam"], "takes no server optimizer"),
])
def test_combinations_it_cannot_take_are_refused(make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run(make_cfg("algorithm=qfedavg", *overrides))
