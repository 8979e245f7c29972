"""CIFAR-100 (Krizhevsky, 2009) from its python-version files, with fine and coarse labels.

50,000/10,000 32x32 colour images in 100 fine classes grouped into 20 coarse superclasses. torchvision's
``CIFAR100`` keeps only the fine labels; this loader reads the same pickled files (``cifar-100-python/train``,
``test``, ``meta``) itself so that the coarse labels reach the partitioners as the ``coarse_label`` training
column (Pachinko allocation, ``partitioner=pachinko``, needs them). ``dataset.download=true`` fetches the files
through torchvision where there is internet.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedbench.data.base import FederatedData
from fedbench.data.vision import _resolve_root, _to_tensor
from fedbench.errors import ConfigError, require

FOLDER = "cifar-100-python"


def _unpickle(path: Path) -> dict[str, Any]:
    """A batch file as a dict with str keys (the original files were pickled by Python 2)."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except FileNotFoundError as err:
        raise ConfigError(f"dataset.root does not hold cifar100 ({FOLDER}/{path.name} missing); set dataset.root to "
                          "the folder holding cifar-100-python/ or dataset.download=true") from err
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ConfigError(f"dataset.root: {path} is not a CIFAR-100 batch file ({type(err).__name__}: {err}); "
                          "replace it with the original file or set dataset.download=true") from err
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _split(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images N x 32 x 32 x 3 uint8, fine labels, coarse labels) of ``train`` or ``test``."""
    entry = _unpickle(folder / name)
    missing = {"data", "fine_labels", "coarse_labels"} - set(entry)
    if missing:
        raise ConfigError(f"dataset.root: {folder / name} lacks {sorted(missing)} (not a CIFAR-100 batch file)")
    images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, np.asarray(entry["fine_labels"], dtype=np.int64), np.asarray(entry["coarse_labels"], dtype=np.int64)


def cifar100(root: str | None = None, download: bool = False, normalize: bool = True) -> FederatedData:
    """CIFAR-100: fine labels as the classes (100), coarse labels as the ``coarse_label`` column.

    Args:
        root: the folder holding ``cifar-100-python/``.
        download: fetch the files through torchvision when they are missing (needs internet).
        normalize: standardize with the training set's per-channel mean/std (else pixels in [0, 1]).
    """
    require(isinstance(download, bool), "dataset.download", "true or false", download)
    require(isinstance(normalize, bool), "dataset.normalize", "true or false", normalize)
    path = _resolve_root("cifar100", root, download)
    if download:
        from torchvision.datasets import CIFAR100

        CIFAR100(str(path), train=True, download=True)
    x_train, y_train, coarse = _split(path / FOLDER, "train")
    x_test, y_test, _ = _split(path / FOLDER, "test")
    return FederatedData("cifar100", _to_tensor(x_train, "cifar100", normalize), torch.as_tensor(y_train),
                         _to_tensor(x_test, "cifar100", normalize), torch.as_tensor(y_test), num_classes=100,
                         train_columns={"coarse_label": coarse})
