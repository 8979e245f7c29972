"""Datasets: digits, Synthetic(alpha, beta), and torchvision loaders on tiny real-format files."""

import numpy as np
import pytest
import torch

from fedbench.data.digits import digits
from fedbench.data.synthetic import synthetic
from fedbench.data.vision import cifar10, fashion_mnist, mnist
from fedbench.errors import ConfigError
from tests.conftest import SHARED_MNIST
from tests.fake_vision import write_cifar10, write_mnist


def test_digits_split_is_stratified_and_fixed():
    a, b = digits(), digits()
    assert a.x_train.shape == (1438, 1, 8, 8) and a.x_test.shape == (359, 1, 8, 8)
    assert float(a.x_train.max()) == 1.0 and torch.equal(a.y_test, b.y_test)
    assert np.bincount(a.y_test.numpy()).min() >= 35


def test_synthetic_shapes_groups_and_seed():
    a, b = synthetic(0.5, 0.5, num_devices=5), synthetic(0.5, 0.5, num_devices=5)
    assert a.x_train.shape[1:] == (60,) and a.num_classes == 10 and len(a.groups) == 5
    assert torch.equal(a.x_train, b.x_train)
    assert sum(len(g) for g in a.groups) == len(a.y_train)
    assert min(len(g) for g in a.groups) >= 45  # lognormal + 50 per device, 10% held out


def test_synthetic_heterogeneity_grows_with_beta():
    """Device input means spread with beta (v_k ~ N(B_k, 1), B_k ~ N(0, beta))."""
    def spread(beta):
        d = synthetic(0.0, beta, num_devices=30, max_samples=200)
        means = torch.stack([d.x_train[g].mean(0) for g in d.groups])
        return float(means.mean(1).std())
    assert spread(5.0) > 3 * spread(0.0)


def test_synthetic_iid_shares_one_distribution():
    """Synthetic-IID devices share one input law and one model: device means and label mixes agree."""
    def device_spread(d):
        means = torch.stack([d.x_train[g].mean(0) for g in d.groups])
        return float(means.mean(1).std())
    iid, het = synthetic(iid=True, num_devices=20, max_samples=300), synthetic(1.0, 1.0, num_devices=20, max_samples=300)
    assert iid.name == "synthetic_iid"
    assert device_spread(iid) < 0.25 * device_spread(het)


def test_mnist_reads_real_idx_format(tmp_path):
    images, labels = write_mnist(tmp_path)
    d = mnist(root=str(tmp_path))
    assert d.x_train.shape == (60, 1, 28, 28) and d.x_test.shape == (20, 1, 28, 28)
    assert torch.equal(d.y_train, torch.as_tensor(labels))
    expected = (images[3, 5, 7] / 255.0 - 0.1307) / 0.3081
    assert d.x_train[3, 0, 5, 7].item() == pytest.approx(expected, abs=1e-5)


def test_fashion_mnist_reads_its_folder(tmp_path):
    write_mnist(tmp_path, folder="FashionMNIST")
    assert fashion_mnist(root=str(tmp_path)).x_train.shape == (60, 1, 28, 28)


def test_cifar10_reads_python_batches(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    write_cifar10(tmp_path)
    # the files are in the real format; only torchvision's md5 check of the full-size files is skipped
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    d = cifar10(root=str(tmp_path))
    assert d.x_train.shape == (50, 3, 32, 32) and d.x_test.shape == (10, 3, 32, 32)


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="dataset.root must be an existing directory"):
        mnist(root=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="does not hold mnist"):
        mnist(root=str(tmp_path))  # exists but empty


@pytest.mark.skipif(not (SHARED_MNIST / "MNIST" / "raw").is_dir(), reason="real MNIST not in ../shared/data")
def test_real_mnist_matches_its_readme():
    d = mnist(root=str(SHARED_MNIST))
    assert len(d.y_train) == 60000 and len(d.y_test) == 10000
    assert d.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(d.y_train.numpy()).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
