"""Partitioners that read per-sample columns of the dataset beyond the labels, and the one call that feeds them.

Most partitioners need only the labels (and ``natural`` the dataset's users). Some need more: Pachinko allocation
reads CIFAR-100's coarse labels, Flower Datasets' partitioners read a column such as ``writer_id``. Such a
partitioner is a :class:`ColumnPartitioner`: it *declares* the columns it reads, and :func:`partition_data` hands it
exactly those from :attr:`FederatedData.train_columns <fedbench.data.base.FederatedData.train_columns>`, or stops
with an error naming the column and the dataset's columns. No dataset or partitioner is recognised by its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from fedbench.data.base import FederatedData
from fedbench.errors import ConfigError

Columns = Mapping[str, np.ndarray]
ColumnFn = Callable[[np.ndarray, int, int, "Sequence[np.ndarray] | None", Columns], list[np.ndarray]]


@dataclass(frozen=True)
class ColumnPartitioner:
    """A partitioner ``(labels, num_clients, seed, groups, columns) -> index arrays`` that reads ``columns``.

    Attributes:
        name: the option, for messages (``partitioner=pachinko``).
        columns: the training columns it reads (e.g. ``("coarse_label",)``).
        fn: the partition function; ``columns`` maps each declared name to its per-sample array.
    """

    name: str
    columns: tuple[str, ...]
    fn: ColumnFn

    def __call__(self, labels: np.ndarray, num_clients: int, seed: int, groups: Sequence[np.ndarray] | None = None,
                 columns: Columns | None = None) -> list[np.ndarray]:
        missing = [c for c in self.columns if columns is None or c not in columns]
        if missing:
            raise ConfigError(f"partitioner={self.name} needs the dataset column(s) {missing}, which this caller did "
                              "not pass (use the federated paradigm's backends: inprocess, ddp, vectorized)")
        return self.fn(labels, num_clients, seed, groups, {c: columns[c] for c in self.columns})


def partition_data(partitioner: Any, data: FederatedData, num_clients: int, seed: int) -> list[np.ndarray]:
    """``partitioner``'s client index arrays for ``data``: labels, users (``groups``) and, for a
    :class:`ColumnPartitioner`, the training columns it declares (a clear error when the dataset lacks one)."""
    needed = getattr(partitioner, "columns", ())
    if not needed:
        return partitioner(data.train_labels, num_clients, seed, data.groups)
    available = dict(data.train_columns or {})
    missing = [c for c in needed if c not in available]
    if missing:
        raise ConfigError(f"partitioner={partitioner.name} needs the training column(s) {missing}; dataset {data.name} "
                          f"has {sorted(available) or 'no columns'} (e.g. dataset=cifar100 has coarse_label; "
                          "dataset=hf keeps its dataset's scalar columns)")
    for c in needed:
        if len(available[c]) != len(data.y_train):
            raise ConfigError(f"dataset {data.name}: column {c} has {len(available[c])} values for "
                              f"{len(data.y_train)} training samples")
    return partitioner(data.train_labels, num_clients, seed, data.groups, {c: available[c] for c in needed})
