"""A Hugging Face dataset's columns as fedbench tensors: images, text, labels and per-sample metadata."""

from __future__ import annotations

from typing import Any

import numpy as np

from fedbench.data.text import VOCAB_SIZE, char_ids
from fedbench.errors import ConfigError


def images(column: Any, key: str) -> np.ndarray:
    """``(N, C, H, W)`` float32 in [0, 1] from PIL images or nested arrays of pixels (0..255 integers or 0..1
    floats); a flat column (e.g. 784 numbers per row) stays ``(N, D)``."""
    try:
        arrays = np.stack([np.asarray(value) for value in column])
    except ValueError as err:
        raise ConfigError(f"dataset.image_key={key}: the images do not all have one shape ({err})") from err
    x = arrays.astype(np.float32)
    if np.issubdtype(arrays.dtype, np.integer) or x.max(initial=0) > 1:
        x /= 255.0
    if x.ndim == 3:  # (N, H, W) grey
        return x[:, None]
    if x.ndim == 4:  # (N, H, W, C)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets standardized per channel with the training set's mean and std (``dataset.normalize=true``)."""
    axes = (0, 2, 3) if train.ndim == 4 else (0,)
    mean, std = train.mean(axes, keepdims=True), train.std(axes, keepdims=True) + 1e-8
    return (train - mean) / std, (test - mean) / std


def texts(column: Any, key: str, seq_len: int | None) -> np.ndarray:
    """``(N, seq_len)`` LEAF character ids (:func:`fedbench.data.text.char_ids`)."""
    values = list(column)
    if values and not isinstance(values[0], str):
        raise ConfigError(f"dataset.text_key={key} must name a column of strings (got {type(values[0]).__name__})")
    try:
        return char_ids(values, seq_len)
    except ValueError as err:
        raise ConfigError(f"dataset.seq_len must be set: {err}") from err


def labels(train: Any, test: Any, feature: Any, key: str, text: bool) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """(train labels, test labels, number of classes, whether they are characters) of the ``key`` column: integer
    class ids as they are (``ClassLabel`` gives the count), single characters through LEAF's vocabulary when the
    inputs are text (next-character prediction), other strings numbered in sorted order."""
    tr, te = list(train), list(test)
    sample = tr[0] if tr else None
    if isinstance(sample, str):
        if text and all(len(v) == 1 for v in tr[:1000]):
            return char_ids(tr, 1)[:, 0], char_ids(te, 1)[:, 0] if te else np.zeros(0, np.int64), VOCAB_SIZE, True
        names = sorted(set(tr) | set(te))
        index = {n: i for i, n in enumerate(names)}
        return (np.array([index[v] for v in tr], dtype=np.int64), np.array([index[v] for v in te], dtype=np.int64),
                len(names), False)
    if sample is not None and not isinstance(sample, (int, np.integer)):
        raise ConfigError(f"dataset.label_key={key} must name a column of class ids or strings "
                          f"(got {type(sample).__name__})")
    y_tr, y_te = np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64)
    count = getattr(feature, "num_classes", None) or int(max(y_tr.max(initial=0), y_te.max(initial=0))) + 1
    return y_tr, y_te, count, False


def metadata(dataset: Any, skip: set[str]) -> dict[str, np.ndarray]:
    """Every other column of scalars (ints, strings, bools: ``writer_id``, ``coarse_label``, ...) as an array,
    for the partitioners (``partitioner=flwr partitioner.partition_by=...``, ``pachinko``)."""
    out = {}
    for name in dataset.column_names:
        if name in skip:
            continue
        values = dataset[name]
        first = values[0] if len(dataset) else None
        if isinstance(first, (int, str, bool, np.integer)):
            out[name] = np.asarray(list(values))
    return out
