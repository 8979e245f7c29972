"""CIFAR-100 from its python pickles (coarse labels as a training column) and Pachinko allocation (Reddi et al.
2021): hand-computed per-client coarse/fine counts, the split's invariants, clear errors, 2 rounds of FedAvg."""

import numpy as np
import pytest
import torch

from fedbench.data.cifar100 import cifar100
from fedbench.data.digits import digits
from fedbench.errors import ConfigError
from fedbench.partition.columns import partition_data
from fedbench.partition.common import label_counts
from fedbench.partition.pachinko import allocate, coarse_map, pachinko
from fedbench.run import run
from tests.fake_federated import cifar100_labels, write_cifar100


def test_cifar100_reads_python_pickles_with_coarse_labels(tmp_path):
    write_cifar100(tmp_path)
    d = cifar100(root=str(tmp_path), normalize=False)
    fine, coarse = cifar100_labels(200)
    assert d.num_classes == 100 and d.x_train.shape == (200, 3, 32, 32) and d.x_test.shape == (100, 3, 32, 32)
    assert d.y_train.tolist() == fine.tolist() and d.train_columns["coarse_label"].tolist() == coarse.tolist()
    import pickle
    raw = pickle.loads((tmp_path / "cifar-100-python" / "train").read_bytes())["data"]
    # row 7, channel 1 (green), pixel (3, 5): the python-version layout is 1024 R, 1024 G, 1024 B per row
    assert float(d.x_train[7, 1, 3, 5]) == pytest.approx(raw[7, 1024 + 3 * 32 + 5] / 255.0)


def test_pachinko_by_hand_on_a_tiny_label_set():
    # fine 0, 1 under coarse 0; fine 2, 3 under coarse 1; two samples of each fine label; 4 clients of 2 samples
    fine = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    coarse_of_fine = np.array([0, 0, 1, 1])
    coarse_p = np.array([[1, 0], [1, 0], [1, 0], [0.5, 0.5]])
    fine_p = np.array([[1, 0, .5, .5], [1, 0, .5, .5], [1, 0, 0, 1], [.5, .5, .5, .5]])
    parts = allocate(fine, coarse_of_fine, [2, 2, 2, 2], coarse_p, fine_p, np.random.default_rng(0))
    # client 0 takes both 0s (fine 0 is then gone); client 1 wants fine 0: renormalised to fine 1, both taken
    # (coarse 0 is then gone); client 2 wants coarse 0: renormalised to coarse 1, and its fine 3 twice; client 3
    # gets what is left, fine 2
    assert label_counts(fine, parts, 4).tolist() == [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 2], [0, 0, 2, 0]]
    assert label_counts(coarse_of_fine[fine], parts, 2).tolist() == [[2, 0], [2, 0], [0, 2], [0, 2]]


def test_pachinko_deals_every_sample_once_in_equal_sizes():
    fine, coarse = cifar100_labels(1000)
    split = pachinko(alpha=0.1, beta=10.0)
    parts = split(fine, 10, 3, None, {"coarse_label": coarse})
    assert [len(p) for p in parts] == [100] * 10
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(1000))
    assert all(np.array_equal(a, b) for a, b in zip(parts, split(fine, 10, 3, None, {"coarse_label": coarse})))
    # alpha = 0.1: a client's samples concentrate on few of the 20 coarse labels (IID would touch nearly all)
    top3 = np.sort(label_counts(coarse, parts, 20), axis=1)[:, -3:].sum(1)
    assert np.median(top3) >= 60


def test_pachinko_needs_coarse_labels_and_one_coarse_per_fine():
    with pytest.raises(ConfigError, match=r"partitioner=pachinko needs the training column\(s\) \['coarse_label'\]; "
                                          r"dataset digits has no columns"):
        partition_data(pachinko(), digits(), 10, 0)
    with pytest.raises(ConfigError, match="fine label 0 appears under coarse labels"):
        coarse_map(np.array([0, 0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ConfigError, match="partitioner.alpha must be > 0"):
        pachinko(alpha=0)


def test_cifar100_pachinko_trains_two_rounds(make_cfg, tmp_path):
    write_cifar100(tmp_path)
    cfg = make_cfg("dataset=cifar100", f"dataset.root={tmp_path}", "partitioner=pachinko", "num_clients=4",
                   "model=mlp", "model.hidden=[16]", "rounds=2", "local_epochs=1", "batch_size=25", "client_fraction=1",
                   "checkpoint_every=0")
    result = run(cfg)
    assert len(result.rows) == 2 and result.summary["dataset"] == "cifar100"
    assert torch.isfinite(result.server["params"]).all()
