"""Flower Datasets' partitioners on any fedbench dataset.

Flower Datasets (https://flower.ai/docs/datasets/, the ``flwr-datasets`` package; Beutel et al., "Flower: A
Friendly Federated Learning Research Framework", 2020) partitions a Hugging Face ``Dataset`` by one of its columns:
``IidPartitioner``, ``DirichletPartitioner`` (Hsu et al. 2019), ``PathologicalPartitioner``, ``ShardPartitioner``,
``NaturalIdPartitioner`` (one partition per value of an id column, e.g. FEMNIST's ``writer_id``),
``LinearPartitioner``, ``SquarePartitioner``, ``ExponentialPartitioner``, ``InnerDirichletPartitioner``, ...
``partitioner=flwr`` builds the class named by ``partitioner.name`` on a small table of the training labels (or of
the ``partitioner.partition_by`` column, from :attr:`FederatedData.train_columns`) and row indices, and makes each
of its partitions a client: ``num_partitions`` is ``num_clients``, ``seed`` derives from the run's seed unless
given. Other keyword arguments of the class are passed through (``+partitioner.alpha=0.3``). Needs the optional
extra ``hf`` (``uv sync --extra hf``). fedbench's own partitioners stay the reference for exactness; this option is
the bridge to the splits other papers published with Flower.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from fedbench.errors import ConfigError, require_choice
from fedbench.extras import require_module
from fedbench.partition.columns import ColumnPartitioner
from fedbench.seeding import derive_seed

INDEX = "__fedbench_index__"
SET_BY_FEDBENCH = ("num_partitions", "partition_by")


def _class(name: str) -> type:
    module = require_module("flwr_datasets.partitioner", "partitioner=flwr")
    names = sorted(n for n in dir(module) if n.endswith("Partitioner") and n != "Partitioner" and "Vertical" not in n)
    require_choice(name, "partitioner.name", names)
    return getattr(module, name)


def _check_options(cls: type, name: str, options: dict[str, Any]) -> inspect.Signature:
    sig = inspect.signature(cls)
    allowed = [p for p in sig.parameters if p not in SET_BY_FEDBENCH]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise ConfigError(f"partitioner.{unknown[0]} is not an option of {name}; its options: {allowed}")
    return sig


def flwr(name: str = "IidPartitioner", partition_by: str = "label", **options: Any) -> ColumnPartitioner:
    """One client per partition of Flower Datasets' ``name`` partitioner.

    Args:
        name: the class in ``flwr_datasets.partitioner`` (e.g. ``NaturalIdPartitioner``, ``DirichletPartitioner``).
        partition_by: ``label`` (the dataset's labels) or a training column of the dataset (``writer_id``, ...).
        **options: the class's other keyword arguments (``alpha``, ``min_partition_size``, ``seed``, ...).
    """
    cls = _class(name)
    sig = _check_options(cls, name, options)

    def partition(labels, num_clients, seed, groups, columns) -> list[np.ndarray]:
        from datasets import Dataset

        values = labels if partition_by == "label" else columns[partition_by]
        kwargs = dict(options)
        if "num_partitions" in sig.parameters:
            kwargs["num_partitions"] = num_clients
        if "partition_by" in sig.parameters:
            kwargs["partition_by"] = partition_by
        if "seed" in sig.parameters and "seed" not in options:
            kwargs["seed"] = derive_seed(seed, "partition-flwr") % 2**32
        try:
            part = cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"partitioner: {name}({kwargs}) was refused: {err}") from err
        part.dataset = Dataset.from_dict({partition_by: np.asarray(values).tolist(), INDEX: np.arange(len(values))})
        if part.num_partitions != num_clients:
            raise ConfigError(f"num_clients must equal the {part.num_partitions:,} partitions {name} makes of "
                              f"{partition_by} (got {num_clients})")
        try:
            return [np.sort(np.asarray(part.load_partition(i)[INDEX], dtype=np.int64)) for i in range(num_clients)]
        except ValueError as err:  # e.g. Dirichlet's min_partition_size not reached
            raise ConfigError(f"partitioner: {name} could not partition {len(values)} samples into {num_clients} "
                              f"clients: {err}") from err

    return ColumnPartitioner(f"flwr ({name})", () if partition_by == "label" else (partition_by,), partition)
