"""dataset=hf on local Hugging Face dataset folders written by the test (save_to_disk), partitioned by Flower
Datasets' partitioners or fedbench's natural one; 2 rounds of FedAvg; offline and missing-extra errors."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # before the library reads it: no network in these tests
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("datasets", reason="the optional extra hf is not installed (uv sync --extra hf)")
pytest.importorskip("flwr_datasets", reason="the optional extra hf is not installed (uv sync --extra hf)")

from fedbench.data.hf import hf  # noqa: E402
from fedbench.data.text import LEAF_LETTERS  # noqa: E402
from fedbench.errors import ConfigError, SetupError  # noqa: E402
from fedbench.partition.columns import partition_data  # noqa: E402
from fedbench.partition.flwr import flwr  # noqa: E402
from fedbench.run import run  # noqa: E402
from tests.fake_federated import SHAKESPEARE_TEXT, write_hf_images, write_hf_text  # noqa: E402


def test_images_labels_and_columns_from_a_saved_dataset(tmp_path):
    path = write_hf_images(tmp_path / "femnist")
    d = hf(path=str(path), image_key="image", label_key="character", test_split=None, test_fraction=0.25)
    assert d.num_classes == 62 and d.x_train.shape[1:] == (1, 12, 12) and len(d.y_train) + len(d.y_test) == 24
    assert float(d.x_train.max()) <= 1.0 and set(d.train_columns) == {"writer_id"}
    parts = partition_data(flwr("NaturalIdPartitioner", partition_by="writer_id"), d, 4, 0)
    writers = d.train_columns["writer_id"]
    assert sorted(len(p) for p in parts) == sorted(np.unique(writers, return_counts=True)[1].tolist())
    assert all(len(set(writers[p])) == 1 for p in parts)  # one writer per client


def test_client_key_gives_users_with_their_own_test_split(tmp_path):
    d = hf(path=str(write_hf_images(tmp_path / "femnist")), image_key="image", label_key="character",
           client_key="writer_id", test_split=None, test_fraction=0.34)
    # 4 writers of 6 samples: LEAF's rule keeps max(1, int(0.66 * 6)) = 3 for training, 3 for test
    assert [len(g) for g in d.groups] == [3, 3, 3, 3] and [len(g) for g in d.test_groups] == [3, 3, 3, 3]
    assert [set(d.train_columns["writer_id"][g]) for g in d.groups] == [{"w0"}, {"w1"}, {"w2"}, {"w3"}]


def test_text_in_flower_shakespeare_layout_is_leaf_next_character(tmp_path):
    d = hf(path=str(write_hf_text(tmp_path / "shakespeare")), text_key="x", label_key="y", client_key="character_id",
           test_split=None)
    assert d.num_classes == 80 and d.x_train.shape[1:] == (80,) and len(d.groups) == 2
    first = d.groups[0][0]  # HAMLET's first training window is one of the text's windows
    window = "".join(LEAF_LETTERS[i] for i in d.x_train[first].tolist())
    start = SHAKESPEARE_TEXT.find(window)
    assert start >= 0 and LEAF_LETTERS[int(d.y_train[first])] == SHAKESPEARE_TEXT[start + 80]


def test_hf_flwr_natural_id_trains_two_rounds(make_cfg, tmp_path):
    path = write_hf_images(tmp_path / "femnist")
    cfg = make_cfg("dataset=hf", f"dataset.path={path}", "dataset.image_key=image", "dataset.label_key=character",
                   "dataset.test_split=null", "partitioner=flwr", "partitioner.name=NaturalIdPartitioner",
                   "partitioner.partition_by=writer_id", "num_clients=4", "model=cnn", "model.fc=16", "rounds=2",
                   "local_epochs=1", "client_fraction=1", "checkpoint_every=0", "eval.per_client=true")
    rows = run(cfg).rows
    assert len(rows) == 2 and rows[-1]["clients_evaluated"] >= 1  # per_client=true: held-out local data


def test_hf_dirichlet_and_bad_options(tmp_path):
    d = hf(path=str(write_hf_images(tmp_path / "f", per_writer=20)), image_key="image", label_key="character",
           test_split=None)
    parts = partition_data(flwr("DirichletPartitioner", alpha=0.5, min_partition_size=1), d, 3, 0)
    assert sum(len(p) for p in parts) == len(d.y_train)
    with pytest.raises(ConfigError, match="partitioner.alpah is not an option of DirichletPartitioner"):
        flwr("DirichletPartitioner", alpah=0.5)
    with pytest.raises(ConfigError, match="partitioner.name must be one of"):
        flwr("NoSuchPartitioner")
    with pytest.raises(ConfigError, match="dataset.label_key must be one of the columns"):
        hf(path=str(tmp_path / "f"), image_key="image", label_key="label", test_split=None)
    with pytest.raises(ConfigError, match="num_clients must equal the 4 partitions NaturalIdPartitioner makes"):
        partition_data(flwr("NaturalIdPartitioner", partition_by="writer_id"), d, 3, 0)


def test_unreachable_hub_id_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no folder of that name here
    with pytest.raises(ConfigError, match="dataset.path 'flwrlabs/no-such-dataset' could not be loaded"):
        hf(path="flwrlabs/no-such-dataset", image_key="image")


def test_missing_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(SetupError, match=r"dataset=hf needs the optional extra 'hf' .* `uv sync --extra hf`"):
        hf(path="anything", image_key="image")
