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
