"""LEAF FEMNIST and Shakespeare read from LEAF's JSON files: one client per user, LEAF's per-user split kept,
LEAF's vocabulary and targets, LEAF's sampling/split rules, and 2 rounds of FedAvg on each."""

import csv

import numpy as np
import pytest
import torch

from fedbench.data.leaf import femnist, shakespeare
from fedbench.data.text import LEAF_LETTERS, char_ids, next_char_targets
from fedbench.data.users import keep_users, split_user
from fedbench.errors import ConfigError
from fedbench.partition.natural import natural
from fedbench.run import run
from tests.fake_federated import SHAKESPEARE_TEXT, write_leaf_femnist, write_leaf_shakespeare


def test_femnist_keeps_leafs_per_user_split(tmp_path):
    root = write_leaf_femnist(tmp_path)
    d = femnist(root=str(root))
    assert d.num_classes == 62 and d.x_train.shape == (27, 1, 28, 28) and d.x_test.shape == (9, 1, 28, 28)
    # users sorted by id (LEAF's read_data sorts them): f0001_07 (6/2), f0002_40 (12/4), f0003_12 (9/3)
    assert [len(g) for g in d.groups] == [6, 12, 9] and [len(g) for g in d.test_groups] == [2, 4, 3]
    assert [g.tolist() for g in d.test_groups] == [[0, 1], [2, 3, 4, 5], [6, 7, 8]]
    parts = natural()(d.train_labels, 3, 0, d.groups)
    assert [p.tolist() for p in parts] == [g.tolist() for g in d.groups]
    import json
    raw = json.loads(next((root / "train").glob("all_data_1_*")).read_text())["user_data"]["f0002_40"]
    assert torch.allclose(d.x_train[d.groups[1]].reshape(12, -1), torch.tensor(raw["x"]))
    assert d.y_train[d.groups[1]].tolist() == raw["y"]


def test_natural_refuses_a_wrong_client_count_naming_both(tmp_path):
    d = femnist(root=str(write_leaf_femnist(tmp_path)))
    with pytest.raises(ConfigError, match=r"^num_clients must equal the dataset's 3 users for partitioner=natural "
                                          r"\(got 20\)$"):
        natural()(d.train_labels, 20, 0, d.groups)
    with pytest.raises(ConfigError, match="3,550 users"):
        natural()(np.zeros(3550), 20, 0, [np.array([i]) for i in range(3550)])


def test_leaf_split_rules_by_hand():
    rng = np.random.default_rng(0)
    assert [len(a) for a in split_user(1, 0.9, rng)] == [1, 0]  # dropped later: no test sample
    assert [len(a) for a in split_user(2, 0.9, rng)] == [1, 1]  # n = 2: one each
    assert [len(a) for a in split_user(10, 0.9, rng)] == [9, 1]
    train, test = split_user(100, 0.9, rng, gap=79)  # Shakespeare: first 90, test from 90 + 79 = 169 on: none
    assert train.tolist() == list(range(90)) and len(test) == 0
    train, test = split_user(1000, 0.9, rng, gap=79)
    assert train.tolist() == list(range(900)) and test.tolist() == list(range(979, 1000))
    # --sf 0.5 on users of 10, 20, 30, 40 samples: whole users until >= 50 samples; then -k 25 drops the small
    picked = keep_users([10, 20, 30, 40], 0.5, 0, np.random.default_rng(1))
    assert sum([10, 20, 30, 40][u] for u in picked) >= 50 and picked == sorted(picked)
    assert keep_users([10, 20, 30, 40], 1.0, 25, rng) == [2, 3]


def test_all_data_is_split_per_user_and_sub_sampled(tmp_path):
    root = write_leaf_femnist(tmp_path, split=False)  # all_data only: 8, 16 and 12 samples per user
    d = femnist(root=str(root), test_fraction=0.25)
    assert [len(g) for g in d.groups] == [6, 12, 9] and [len(g) for g in d.test_groups] == [2, 4, 3]
    assert len(femnist(root=str(root), min_samples=10).groups) == 2
    with pytest.raises(ConfigError, match="dataset.fraction must be in"):
        femnist(root=str(root), fraction=0.0)


def test_shakespeare_vocabulary_and_targets_match_leaf_on_a_hand_made_string():
    assert len(LEAF_LETTERS) == 80
    # LEAF's ALL_LETTERS.find: '\n' 0, ' ' 1, ',' 8, 'A'..'Z' 25..50, 'a'..'z' 53..78, '}' 79
    assert char_ids(["To be,"]).tolist() == [[44, 67, 1, 54, 57, 8]]
    assert char_ids(["\n}é|"]).tolist() == [[0, 79, 79, 79]]  # unknown characters: the last letter, as letter_to_vec
    x, y = char_ids(["abc"]), np.array([LEAF_LETTERS.find("d")])
    assert next_char_targets(x, y, "next_char").tolist() == [56]
    assert next_char_targets(x, y, "sequence").tolist() == [[54, 55, 56]]  # "bcd": the next character everywhere


def test_shakespeare_reads_roles_and_sequence_targets(tmp_path):
    root = write_leaf_shakespeare(tmp_path)
    d = shakespeare(root=str(root))
    text = SHAKESPEARE_TEXT * 2
    assert d.num_classes == 80 and d.x_train.dtype == torch.int64 and d.x_train.shape == (120, 80)
    hamlet = d.groups[1]  # roles sorted: AS_YOU_LIKE_IT_ROSALIND, THE_TRAGEDY_OF_HAMLET_HAMLET
    assert d.x_train[hamlet[5]].tolist() == [LEAF_LETTERS.find(c) for c in text[5:85]]
    assert int(d.y_train[hamlet[5]]) == LEAF_LETTERS.find(text[85])
    seq = shakespeare(root=str(root), targets="sequence")
    assert seq.y_train[hamlet[5]].tolist() == [LEAF_LETTERS.find(c) for c in text[6:86]]
    all_data = shakespeare(root=str(write_leaf_shakespeare(tmp_path / "all", split=False, repeat=10)))
    n = len(SHAKESPEARE_TEXT) * 10 - 80  # 870 samples a role: 783 train, test from 783 + 79 = 862 on
    assert [len(g) for g in all_data.groups] == [int(0.9 * n)] * 2 and [len(g) for g in all_data.test_groups] == [8, 8]


def test_missing_files_are_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not hold LEAF's femnist files"):
        femnist(root=str(tmp_path))


def _rows(path):
    with open(path / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_femnist_trains_two_rounds_with_per_client_accuracy(make_cfg, tmp_path):
    root = write_leaf_femnist(tmp_path)
    cfg = make_cfg("dataset=femnist", f"dataset.root={root}", "partitioner=natural", "num_clients=3", "model=cnn",
                   "model.fc=16", "batch_size=6", "rounds=2", "local_epochs=1", "client_fraction=1", "checkpoint_every=0")
    result = run(cfg)
    rows = _rows(result.output_dir)
    assert len(rows) == 2 and all(0 <= float(r["client_accuracy_min"]) <= float(r["client_accuracy_p10"])
                                  <= float(r["client_accuracy_mean"]) <= 1 for r in rows)
    assert rows[-1]["clients_evaluated"] == "3"
    assert result.summary["num_train"] == 27


def test_shakespeare_trains_two_rounds_with_the_char_lstm(make_cfg, tmp_path):
    root = write_leaf_shakespeare(tmp_path)
    cfg = make_cfg("dataset=shakespeare", f"dataset.root={root}", "partitioner=natural", "num_clients=2",
                   "model=char_lstm", "model.hidden_size=16", "rounds=2", "local_epochs=1", "client_fraction=1",
                   "batch_size=20", "checkpoint_every=0", "eval.max_clients=1")
    rows = run(cfg).rows
    assert len(rows) == 2 and rows[-1]["clients_evaluated"] == 1 and np.isfinite(rows[-1]["test_loss"])
