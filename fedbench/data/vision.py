"""torchvision image datasets (MNIST, Fashion-MNIST, CIFAR-10) read from a data root.

Downloads are off by default: clusters often have no internet, and a run must not fail
halfway through a grid because a mirror is down. Point ``dataset.root`` at the folder
that holds ``MNIST/raw`` (or ``FashionMNIST/raw``, ``cifar-10-batches-py``), or set
``dataset.download=true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from fedbench.data.base import FederatedData
from fedbench.errors import ConfigError, require

# Per-channel mean/std of the training sets (the values torchvision examples use).
_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_FOLDERS = {"mnist": "MNIST/raw", "fashion_mnist": "FashionMNIST/raw", "cifar10": "cifar-10-batches-py",
            "cifar100": "cifar-100-python"}


def _resolve_root(name: str, root: str | None, download: bool) -> Path:
    if root is None:
        raise ConfigError(f"dataset.root must be set for {name} (a folder holding {_FOLDERS[name]}/)")
    path = Path(root).expanduser().resolve()
    if not path.is_dir() and not download:
        raise ConfigError(
            f"dataset.root must be an existing directory (got {root!r}, resolved to {path}); "
            f"it should hold {_FOLDERS[name]}/, or set dataset.download=true"
        )
    return path


def _to_tensor(images, name: str, normalize: bool) -> torch.Tensor:
    """Pixels scaled to [0, 1]; with ``normalize`` then standardized per channel (training-set mean/std)."""
    # in place after the one conversion (the same elementwise operations, bit for bit, without a fresh 200 MB buffer
    # per step: on MNIST's training set that is ~0.2 s of start-up)
    x = torch.as_tensor(np.asarray(images)).to(torch.float32).div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)  # (N,H,W) or (N,H,W,C) -> (N,C,H,W)
    x = x.contiguous()
    if not normalize:
        return x
    mean, std = (torch.tensor(s).view(1, -1, 1, 1) for s in _STATS[name])
    return x.sub_(mean).div_(std)


def _load(name: str, make: Callable, root: str | None, download: bool, normalize: bool) -> FederatedData:
    require(isinstance(download, bool), "dataset.download", "true or false", download)
    require(isinstance(normalize, bool), "dataset.normalize", "true or false", normalize)
    path = _resolve_root(name, root, download)
    try:
        train, test = make(str(path), True, download), make(str(path), False, download)
    except RuntimeError as err:  # torchvision's "Dataset not found or corrupted"
        raise ConfigError(
            f"dataset.root {str(path)!r} does not hold {name} ({_FOLDERS[name]}/ missing or incomplete); "
            f"set dataset.root to the right folder or dataset.download=true. torchvision said: {err}"
        ) from err
    except (AssertionError, ValueError, EOFError, OSError) as err:  # files present but not in the dataset's format
        raise ConfigError(
            f"dataset.root {str(path)!r}: the {name} files under {_FOLDERS[name]}/ cannot be read ({type(err).__name__}: "
            f"{str(err) or 'unexpected file contents'}); replace them with the original files or delete them and set "
            f"dataset.download=true"
        ) from err
    return FederatedData(
        name,
        _to_tensor(train.data, name, normalize),
        torch.as_tensor(np.asarray(train.targets), dtype=torch.int64),
        _to_tensor(test.data, name, normalize),
        torch.as_tensor(np.asarray(test.targets), dtype=torch.int64),
        num_classes=10,
    )


def mnist(root: str | None = None, download: bool = False, normalize: bool = True) -> FederatedData:
    """MNIST (LeCun et al., 1998): 60,000/10,000 28x28 grey digits; ``normalize=false`` keeps raw
    intensities in [0, 1] as McMahan et al. (2017) feed them."""
    from torchvision.datasets import MNIST  # torchvision import is slow; only pay when used

    return _load("mnist", lambda r, t, d: MNIST(r, train=t, download=d), root, download, normalize)


def fashion_mnist(root: str | None = None, download: bool = False, normalize: bool = True) -> FederatedData:
    """Fashion-MNIST (Xiao et al., 2017): 60,000/10,000 28x28 grey clothing images."""
    from torchvision.datasets import FashionMNIST

    return _load("fashion_mnist", lambda r, t, d: FashionMNIST(r, train=t, download=d), root, download, normalize)


def cifar10(root: str | None = None, download: bool = False, normalize: bool = True) -> FederatedData:
    """CIFAR-10 (Krizhevsky, 2009): 50,000/10,000 32x32 colour images."""
    from torchvision.datasets import CIFAR10

    return _load("cifar10", lambda r, t, d: CIFAR10(r, train=t, download=d), root, download, normalize)
