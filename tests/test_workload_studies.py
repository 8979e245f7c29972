"""The LEAF and FedOpt study presets encode their papers' protocols (clients per round exact, E, B, rounds, lr)."""

from pathlib import Path

import pytest

from fedbench.sampling import clients_per_round
from tests.conftest import compose_config


def _cfg(*overrides: str):
    return compose_config(list(overrides), Path("/tmp/unused"))


@pytest.mark.parametrize("arm, per_round, epochs", [("c3_e1", 3, 1), ("c3_e100", 3, 100), ("c35_e1", 35, 1)])
def test_leaf_femnist_settings_of_leafs_script(arm, per_round, epochs):
    cfg = _cfg("+study=leaf_femnist", f"leaf_arm={arm}")
    assert (cfg.lr, cfg.batch_size, cfg.rounds, cfg.eval_every, cfg.local_epochs) == (0.004, 10, 2000, 20, epochs)
    assert clients_per_round(cfg.num_clients, cfg.client_fraction) == per_round
    assert cfg.model._target_.endswith("models.cnn") and cfg.model.fc == 2048  # model=leaf_cnn
    # another user count keeps the clients per round exact
    other = _cfg("+study=leaf_femnist", f"leaf_arm={arm}", "num_clients=187")
    assert clients_per_round(other.num_clients, other.client_fraction) == per_round


def test_leaf_shakespeare_settings_of_leafs_script():
    cfg = _cfg("+study=leaf_shakespeare", "num_clients=143")
    assert (cfg.lr, cfg.batch_size, cfg.rounds, cfg.local_epochs) == (0.8, 10, 80, 1)
    assert clients_per_round(cfg.num_clients, cfg.client_fraction) == 10
    assert cfg.model.hidden_size == 256 and cfg.model.embedding_dim == 8 and cfg.model.num_layers == 2


@pytest.mark.parametrize("task, batch, rounds, partitioner", [
    ("cifar10", 20, 4000, "dirichlet"), ("cifar100", 20, 4000, "pachinko"), ("femnist", 20, 1500, "natural"),
    ("shakespeare", 4, 1200, "natural")])
def test_fedopt_reddi_task_settings(task, batch, rounds, partitioner):
    cfg = _cfg("+study=fedopt_reddi", f"fedopt_task={task}", "algorithm=fedadam")
    assert (cfg.batch_size, cfg.rounds, cfg.local_epochs) == (batch, rounds, 1)
    assert clients_per_round(cfg.num_clients, cfg.client_fraction) == 10
    assert cfg.partitioner._target_.rsplit(".", 1)[-1] == partitioner
    assert (cfg.server_optimizer.beta1, cfg.server_optimizer.beta2) == (0.9, 0.99)
    assert len(cfg.fedopt_grids.client_lr) == 9 and cfg.fedopt_grids.client_lr[0] == 0.001
    if task == "shakespeare":
        assert cfg.dataset.targets == "sequence" and cfg.model.all_positions and cfg.task._target_.endswith("SequenceTask")


def test_the_fedopt_preset_and_the_datasets_page_quote_the_same_paper_numbers():
    """The paper's FedAvg accuracies are written twice for readers (the preset's comment, the reference page): they
    must agree, task by task, and name their second-hand source."""
    import re

    root = Path(__file__).resolve().parents[1]
    preset = (root / "conf" / "study" / "fedopt_reddi.yaml").read_text()
    page = (root / "docs" / "reference" / "datasets.md").read_text()
    pattern = r"(EMNIST CR|CIFAR-100|Shakespeare) (\d+\.\d)\b"
    quoted = {name: dict(re.findall(pattern, text.replace("\n# ", " "))) for name, text in
              (("preset", preset), ("page", page))}
    assert quoted["preset"] == quoted["page"] == {"EMNIST CR": "84.9", "CIFAR-100": "44.7", "Shakespeare": "56.9"}
    assert "BENCHMARK_MPI.md" in preset and "BENCHMARK_MPI.md" in page
