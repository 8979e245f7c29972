"""Any Hugging Face dataset, by hub id or local folder (``dataset=hf``).

The ``datasets`` library (Lhoest et al., "Datasets: A Community Library for Natural Language Processing", EMNLP
2021 demos) loads ``dataset.path``: a hub id (``flwrlabs/femnist``, ``flwrlabs/shakespeare``, ``cifar100``,
``sent140``...; needs internet or a cached copy) or a local folder (``Dataset.save_to_disk`` output, or data files
``load_dataset`` reads). ``image_key`` or ``text_key`` names the input column, ``label_key`` the target: images
become ``(N, C, H, W)`` floats in [0, 1]; text becomes LEAF character ids (:mod:`fedbench.data.text`), and a
label column of single characters makes it next-character prediction. Every other scalar column is kept for the
partitioners (``partitioner=flwr partitioner.partition_by=writer_id``, ``pachinko`` on ``coarse_label``).
``client_key`` makes the dataset naturally federated (one user per value; ``partitioner=natural``): without a test
split, each user's samples are then split as LEAF does (:mod:`fedbench.data.users`), so per-client evaluation has
each user's own test data. Needs the optional extra ``hf`` (``uv sync --extra hf``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedbench.data import hf_columns as C
from fedbench.data.base import FederatedData, stratified_split
from fedbench.data.text import TARGETS, next_char_targets
from fedbench.data.users import check_sampling, keep_users, regroup, split_user
from fedbench.errors import ConfigError, require, require_choice
from fedbench.extras import require_module
from fedbench.seeding import numpy_generator


def _load(path: str, name: str | None) -> dict[str, Any]:
    """The dataset's splits by name (a single ``Dataset`` counts as ``train``)."""
    datasets = require_module("datasets", "dataset=hf")
    folder = Path(path).expanduser()
    try:
        if (folder / "dataset_dict.json").exists() or (folder / "state.json").exists():
            loaded = datasets.load_from_disk(str(folder))
        else:
            loaded = datasets.load_dataset(str(folder) if folder.exists() else path, name)
    except Exception as err:  # noqa: BLE001 - the library raises many types (missing files, no network, bad id)
        first = str(err).splitlines()[0] if str(err) else ""
        raise ConfigError(f"dataset.path {path!r} could not be loaded ({type(err).__name__}: {first}); a hub id needs "
                          "internet or a cached copy (HF_DATASETS_OFFLINE=1 reads the cache only), a folder must hold "
                          "Dataset.save_to_disk output or data files") from err
    return {"train": loaded} if isinstance(loaded, datasets.Dataset) else dict(loaded)


def _split(splits: dict[str, Any], key: str | None, field: str) -> Any:
    if key is None:
        return None
    require_choice(key, field, list(splits))
    return splits[key]


def _inputs(ds: Any, image_key: str | None, text_key: str | None, seq_len: int | None) -> np.ndarray:
    key = image_key or text_key
    require(key in ds.column_names, f"dataset.{'image_key' if image_key else 'text_key'}",
            f"one of the columns {ds.column_names}", key)
    return C.images(ds[key], key) if image_key else C.texts(ds[key], key, seq_len)


def _by_user(train_keys: np.ndarray, test_keys: np.ndarray | None, fraction: float, min_samples: int,
             test_fraction: float, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per kept user: train row indices, and test row indices (into the test split when there is one, else into
    the train split: each user's own LEAF-style split)."""
    groups = regroup(train_keys)
    kept = keep_users([len(g) for g in groups], fraction, min_samples, rng)
    train, test = [], []
    for u in kept:
        g = groups[u]
        if test_keys is not None:
            train.append(g)
            test.append(np.flatnonzero(test_keys == train_keys[g[0]]))
            continue
        tr, te = split_user(len(g), 1 - test_fraction, rng)
        if len(tr) and len(te):
            train.append(g[tr])
            test.append(g[te])
    return train, test


def hf(path: str | None = None, split: str = "train", test_split: str | None = "test", name: str | None = None,
       image_key: str | None = None, text_key: str | None = None, label_key: str = "label",
       client_key: str | None = None, seq_len: int | None = None, targets: str = "next_char",
       normalize: bool = False, test_fraction: float = 0.1, fraction: float = 1.0, min_samples: int = 0,
       seed: int = 0) -> FederatedData:
    """A Hugging Face dataset as fedbench data.

    Args:
        path: hub id or local folder. name: the dataset's configuration name, if it has several.
        split, test_split: the splits to train and test on; without ``test_split`` (null, or absent from the
            dataset) ``test_fraction`` of the training split is held out (per user with ``client_key``).
        image_key, text_key: the input column (exactly one). label_key: the target column.
        client_key: a column of user ids that makes the data naturally federated (``partitioner=natural``).
        seq_len: characters per text input (longer texts keep their end, shorter are left-padded).
        targets: for next-character data: ``next_char`` or ``sequence`` (see :mod:`fedbench.data.text`).
        normalize: standardize image channels with the training set's mean/std (else [0, 1]).
        test_fraction, fraction, min_samples, seed: held-out share, and LEAF-style user sampling (``client_key``).
    """
    require(isinstance(path, str) and path != "", "dataset.path", "a hub id or a local folder", path)
    require((image_key is None) != (text_key is None), "dataset.image_key / dataset.text_key",
            "exactly one set (the input column)", {"image_key": image_key, "text_key": text_key})
    require(seq_len is None or (isinstance(seq_len, int) and seq_len >= 1), "dataset.seq_len", "null or >= 1", seq_len)
    require_choice(targets, "dataset.targets", TARGETS)
    check_sampling(fraction, min_samples, test_fraction)
    splits = _load(path, name)
    train, test = _split(splits, split, "dataset.split"), _split(splits, test_split if test_split in splits else None,
                                                                 "dataset.test_split")
    require(label_key in train.column_names, "dataset.label_key", f"one of the columns {train.column_names}", label_key)
    x_tr = _inputs(train, image_key, text_key, seq_len)
    x_te = _inputs(test, image_key, text_key, seq_len) if test is not None else x_tr[:0]
    y_tr, y_te, classes, chars = C.labels(train[label_key], test[label_key] if test is not None else [],
                                          train.features.get(label_key), label_key, text_key is not None)
    if chars:
        y_tr, y_te = next_char_targets(x_tr, y_tr, targets), next_char_targets(x_te, y_te, targets)
    columns = C.metadata(train, {image_key, text_key, label_key})
    rng = numpy_generator(seed, "hf", path)
    if client_key is not None:
        require(client_key in columns, "dataset.client_key", f"one of the scalar columns {sorted(columns)}", client_key)
        test_keys = np.asarray(list(test[client_key])) if test is not None and client_key in test.column_names else None
        return _natural(path, x_tr, y_tr, x_te, y_te, classes, columns, client_key, test_keys, fraction, min_samples,
                        test_fraction, rng, normalize)
    if test is None:
        tr, te = stratified_split(y_tr if y_tr.ndim == 1 else y_tr[:, -1], test_fraction, rng)
        x_tr, y_tr, x_te, y_te, columns = x_tr[tr], y_tr[tr], x_tr[te], y_tr[te], {k: v[tr] for k, v in columns.items()}
    return _data(path, x_tr, y_tr, x_te, y_te, classes, columns, normalize)


def _natural(path: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, classes: int,
             columns: dict[str, np.ndarray], client_key: str, test_keys: np.ndarray | None, fraction: float,
             min_samples: int, test_fraction: float, rng: np.random.Generator, normalize: bool) -> FederatedData:
    """Rows regrouped by user: ``groups`` and ``test_groups`` index each user's rows."""
    train, test = _by_user(columns[client_key], test_keys, fraction, min_samples, test_fraction, rng)
    if not train:
        raise ConfigError(f"dataset {path}: no user left after dataset.fraction / min_samples and the per-user split")
    rows = np.concatenate(train)
    test_rows = np.concatenate(test) if test_keys is None else np.arange(len(y_te))
    x_test, y_test = (x_tr, y_tr) if test_keys is None else (x_te, y_te)
    data = _data(path, x_tr[rows], y_tr[rows], x_test[test_rows], y_test[test_rows], classes,
                 {k: v[rows] for k, v in columns.items()}, normalize)
    bounds = np.cumsum([0, *(len(g) for g in train)])
    groups = [np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    if test_keys is None:
        tb = np.cumsum([0, *(len(g) for g in test)])
        test_groups = [np.arange(a, b) for a, b in zip(tb[:-1], tb[1:])]
    else:
        test_groups = [np.asarray(g, dtype=np.int64) for g in test]
    return FederatedData(data.name, data.x_train, data.y_train, data.x_test, data.y_test, classes, groups=groups,
                         test_groups=test_groups, train_columns=data.train_columns)


def _data(path: str, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, classes: int,
          columns: dict[str, np.ndarray], normalize: bool) -> FederatedData:
    tokens = np.issubdtype(x_tr.dtype, np.integer)
    if normalize and not tokens:
        x_tr, x_te = C.standardize(x_tr, x_te)
    dtype = torch.int64 if tokens else torch.float32
    return FederatedData(f"hf:{path}", torch.as_tensor(x_tr, dtype=dtype), torch.as_tensor(y_tr, dtype=torch.int64),
                         torch.as_tensor(x_te, dtype=dtype), torch.as_tensor(y_te, dtype=torch.int64), classes,
                         train_columns=columns or None)
