"""The workload models' parameter counts against their references, resnet18_gn and char_lstm through
backend=inprocess and backend=vectorized (equal to 1e-5), and task=sequence's padding-aware loss and token accuracy."""

import numpy as np
import pytest
import torch
from torch import nn

from fedbench.data.text import IGNORE
from fedbench.errors import ConfigError
from fedbench.local import evaluate
from fedbench.params import get_flat
from fedbench.run import run
from fedbench.tasks.char_lstm import char_lstm
from fedbench.tasks.models import cnn
from fedbench.tasks.resnet_gn import resnet18_gn
from fedbench.tasks.sequence import SequenceTask
from tests.conftest import compose_config
from tests.fake_federated import write_leaf_shakespeare
from tests.test_vectorized import assert_same


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_of_the_references():
    assert count(cnn((1, 28, 28), 62, fc=2048)) == 6_603_710  # LEAF's FEMNIST CNN (model=leaf_cnn)
    assert count(resnet18_gn((3, 32, 32), 10)) == 11_173_962  # ResNet-18 (CIFAR layout), CIFAR-10
    assert count(resnet18_gn((3, 32, 32), 100)) == 11_220_132  # CIFAR-100
    lstm = char_lstm((80,), 80)
    assert count(lstm) == 819_920  # PyTorch: two bias vectors per LSTM layer
    hh_biases = sum(p.numel() for n, p in lstm.named_parameters() if n.startswith("lstm.bias_hh"))
    assert count(lstm) - hh_biases == 817_872  # LEAF's TensorFlow model: one bias per gate set


def test_resnet18_gn_uses_groupnorm_with_two_groups_and_has_no_buffers():
    model = resnet18_gn((3, 32, 32), 10)
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 20 and {m.num_groups for m in norms} == {2}
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert not list(model.buffers())
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_models_refuse_inputs_they_cannot_read():
    with pytest.raises(ConfigError, match="resnet18_gn needs image inputs"):
        resnet18_gn((60,), 10)
    with pytest.raises(ConfigError, match="char_lstm needs sequences of token ids"):
        char_lstm((1, 28, 28), 62)


# digits (1x8x8) cut into 200 clients of ~7 images, 2 per round: a tiny input for an 11M-parameter model
TINY_RESNET = ["model=resnet18_gn", "num_clients=200", "client_fraction=0.01", "rounds=1", "local_epochs=1",
               "batch_size=4", "checkpoint_every=0"]


@pytest.mark.slow
def test_resnet18_gn_vectorized_equals_inprocess(tmp_path):
    assert_same([*TINY_RESNET, "momentum=0.9"], tmp_path, "backend.chunk=2")


def _shakespeare(tmp_path, *extra):
    root = write_leaf_shakespeare(tmp_path / "leaf")
    return ["dataset=shakespeare", f"dataset.root={root}", "partitioner=natural", "num_clients=2", "model=char_lstm",
            "model.hidden_size=8", "rounds=2", "local_epochs=1", "client_fraction=1", "batch_size=20",
            "checkpoint_every=0", *extra]


@pytest.mark.slow
def test_char_lstm_vectorized_equals_inprocess(tmp_path):
    # nn.LSTM has no torch.func batching rule; on the CPU torch falls back to a loop over the clients (slower, exact)
    assert_same(_shakespeare(tmp_path), tmp_path, "backend.chunk=2")


def test_char_lstm_with_local_dp_is_refused_with_the_reason(tmp_path):
    cfg = compose_config(_shakespeare(tmp_path, "privacy=local_dp"), tmp_path / "run")
    with pytest.raises(ConfigError, match="privacy=local_dp needs per-sample gradients of every layer"):
        run(cfg)


class FixedLogits(nn.Module):
    """Logits read from the input ids: token t of sequence n predicts class x[n, t] (one-hot logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * nn.functional.one_hot(x, 4).float()


def test_sequence_task_scores_real_tokens_only_by_hand():
    task = SequenceTask(FixedLogits())
    x = torch.tensor([[0, 1, 2], [3, 3, 1]])
    y = torch.tensor([[0, 2, 2], [IGNORE, 3, 0]])  # 5 real tokens; predictions x: right at (0,0), (0,2), (1,1)
    acc, loss = evaluate(task, get_flat(task), x, y)
    assert acc == pytest.approx(3 / 5)
    right, wrong = -np.log(np.e / (np.e + 3)), -np.log(1 / (np.e + 3))  # cross-entropy of one-hot logits
    assert loss == pytest.approx((3 * right + 2 * wrong) / 5, rel=1e-6)
    assert float(task.training_step((x, y), 0).detach()) == pytest.approx((3 * right + 2 * wrong) / 5, rel=1e-6)
    # one target per sequence: the last position's logits are scored
    assert evaluate(task, get_flat(task), x, torch.tensor([2, 0]))[0] == pytest.approx(1 / 2)


@pytest.mark.slow
def test_sequence_task_trains_on_every_position_with_other_parts(tmp_path):
    base = _shakespeare(tmp_path, "dataset.targets=sequence", "task=sequence", "model.all_positions=true")
    for i, extra in enumerate((["algorithm=scaffold", "compressor=topk"],
                               ["topology=hierarchical", "topology.num_edges=2", "algorithm=fedadam", "aggregator=median"],
                               ["topology=gossip", "backend=vectorized"])):
        rows = run(compose_config([*base, *extra], tmp_path / f"run{i}")).rows
        assert len(rows) == 2 and 0 <= rows[-1]["test_accuracy"] <= 1 and np.isfinite(rows[-1]["test_loss"])
        assert ("client_accuracy_mean" in rows[-1]) == ("topology=gossip" not in extra)  # star/hierarchical rounds


def test_sequence_targets_need_all_positions(tmp_path):
    cfg = compose_config(_shakespeare(tmp_path, "dataset.targets=sequence", "task=sequence"), tmp_path / "run")
    with pytest.raises(ConfigError, match="need logits at every position \\(model.all_positions=true\\)"):
        run(cfg)
