"""Per-client evaluation: hand-computed distribution columns, the held-out split and the fixed client subset,
option errors, the metrics.csv columns and the report's figure."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from fedbench.build import build
from fedbench.client_eval import ClientEval, client_columns, plan_client_eval
from fedbench.data.digits import digits
from fedbench.errors import ConfigError
from fedbench.run import run
from fedbench.tasks.classifier import ClassifierTask
from tests.fake_federated import write_leaf_femnist


class Echo(nn.Module):
    """Predicts class x[:, 0] (one-hot logits of 4 classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * nn.functional.one_hot(x[:, 0].long(), 4).float()


def _client(right: int, wrong: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(right + wrong, 1)
    return x, torch.tensor([0] * right + [1] * wrong)


def test_distribution_columns_by_hand():
    task = ClassifierTask(Echo())
    data = (_client(4, 0), _client(1, 1), _client(0, 3), _client(3, 1))  # accuracies 1, 0.5, 0, 0.75
    exp = SimpleNamespace(task=task, client_eval=ClientEval((0, 1, 2, 3), data, "users"))
    cols = client_columns(exp, torch.ones(1))
    # sorted 0, 0.5, 0.75, 1: p10 = 0 + 0.3 * 0.5; p50 = (0.5 + 0.75) / 2; p90 = 0.75 + 0.7 * 0.25;
    # variance (1 + 0.25 + 0 + 0.5625) / 4 - 0.5625^2
    assert cols == pytest.approx({"client_accuracy_mean": 0.5625, "client_accuracy_p10": 0.15,
                                  "client_accuracy_p50": 0.625, "client_accuracy_p90": 0.925,
                                  "client_accuracy_min": 0.0, "client_accuracy_var": 0.13671875,
                                  "clients_evaluated": 4})
    assert client_columns(SimpleNamespace(task=task, client_eval=None), torch.ones(1)) == {}


def test_held_out_split_and_fixed_subset():
    d = digits()
    parts = [np.arange(0, 10), np.arange(10, 15), np.arange(15, 16)] + [np.arange(16 + 5 * i, 21 + 5 * i) for i in range(7)]
    kept, plan = plan_client_eval({"per_client": True, "test_fraction": 0.2, "max_clients": 4}, d, parts, 0,
                                  torch.device("cpu"))
    assert [len(k) for k in kept[:3]] == [8, 4, 1]  # round(0.2 n) held out, at least one sample kept
    assert plan.source == "held_out" and len(plan.clients) == 4 and 2 not in plan.clients  # client 2 holds out 0
    for c, (x, y) in zip(plan.clients, plan.data):  # held-out samples are the client's, and not trained on
        held = np.setdiff1d(parts[c], kept[c])
        assert torch.equal(y, d.y_train[held]) and not set(held) & set(kept[c])
    again = plan_client_eval({"per_client": True, "max_clients": 4}, d, parts, 0, torch.device("cpu"))[1]
    assert again.clients == plan.clients  # seeded: the same subset every time
    assert plan_client_eval({"per_client": "auto"}, d, parts, 0, torch.device("cpu")) == (parts, None)


@pytest.mark.parametrize("node, message", [
    ({"per_client": "yes"}, "eval.per_client must be one of ['auto', True, False]"),
    ({"max_clients": 0}, "eval.max_clients must be null (every client) or an integer >= 1"),
    ({"test_fraction": 1.0}, "eval.test_fraction must be in (0, 1)"),
    ({"per_clients": True}, "eval.per_clients must be one of the eval options"),
])
def test_bad_options_name_the_field(node, message):
    with pytest.raises(ConfigError) as err:
        plan_client_eval(node, digits(), [np.arange(10)], 0, torch.device("cpu"))
    assert message in str(err.value)


def test_per_client_true_is_refused_where_the_round_does_not_evaluate_clients(make_cfg):
    cfg = make_cfg("topology=gossip", "client_fraction=1", "num_clients=4", "eval.per_client=true", "rounds=1")
    with pytest.raises(ConfigError, match="eval.per_client must be auto or false with topology=gossip"):
        build(cfg)


def test_per_client_true_holds_out_local_data_and_writes_the_columns(make_cfg):
    exp = build(make_cfg("eval.per_client=true", "eval.max_clients=5"))
    # digits' 1,438 training images over 20 IID clients of 71 or 72: round(0.2 x 71.9) = 14 held out from each
    assert sum(len(p) for p in exp.parts) == 1438 - 20 * 14 and len(exp.client_eval.clients) == 5
    assert all(len(y) == 14 for _, y in exp.client_eval.data)
    result = run(make_cfg("eval.per_client=true", "eval.max_clients=5", "rounds=2", "local_epochs=1",
                          "checkpoint_every=0", "eval_every=2"))
    header = (result.output_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"client_accuracy_mean", "client_accuracy_p10", "client_accuracy_min", "clients_evaluated"} <= set(header)
    assert "client_accuracy_mean" not in result.rows[0] and result.rows[1]["clients_evaluated"] == 5
    default = run(make_cfg("rounds=1", "local_epochs=1", "checkpoint_every=0"))  # digits, iid, auto: off
    assert "client_accuracy_mean" not in default.rows[0]


def test_report_draws_the_client_accuracy_distribution(make_cfg, tmp_path):
    from fedbench.report.__main__ import main as report

    root = write_leaf_femnist(tmp_path)
    for seed in (0, 1):
        run(make_cfg("dataset=femnist", f"dataset.root={root}", "partitioner=natural", "num_clients=3",
                     "model=logreg", "rounds=2", "local_epochs=1", "client_fraction=1", "checkpoint_every=0",
                     f"seed={seed}"))
    assert report([str(tmp_path / "run0"), str(tmp_path / "run1"), "--out", str(tmp_path / "report")]) == 0
    report = (tmp_path / "report" / "systems_report.md").read_text()
    assert "## Per-client accuracy" in report and "![client accuracy distribution](client_accuracy.png)" in report
    assert (tmp_path / "report" / "client_accuracy.png").stat().st_size > 1000
    assert "client_accuracy_p10" not in report.split("## Other per-round metrics")[-1].split("## HPO")[0]
