"""LEAF's FEMNIST and Shakespeare, read from LEAF's own JSON files.

Caldas, Duddu, Wu, Li, Konečný, McMahan, Smith, Talwalkar, "LEAF: A Benchmark for Federated Settings", 2018
(https://github.com/TalwalkarLab/leaf). LEAF's ``preprocess.sh`` writes ``data/<name>/data/{all_data,train,test}``,
JSON files of ``{"users": [...], "num_samples": [...], "user_data": {user: {"x": [...], "y": [...]}}}``
(FEMNIST: 3,550 writers, 62 classes, each x a flat 28x28 image in [0, 1]; Shakespeare: 1,129 speaking roles, each
x an 80-character string and y the character after it). ``dataset.root`` points at that ``data`` folder (or at
``data/<name>``): with ``train/`` and ``test/`` present, LEAF's own per-user split is kept as it is; with only
``all_data/``, fedbench samples and splits it as LEAF's options would (:mod:`fedbench.data.users`). Users are
ordered by id (LEAF's ``read_data`` sorts them too); one client per user with ``partitioner=natural``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from fedbench.data.base import FederatedData
from fedbench.data.text import TARGETS, VOCAB_SIZE, char_id, char_ids, next_char_targets
from fedbench.data.users import Samples, assemble, check_sampling, keep_users, split_users
from fedbench.errors import ConfigError, require_choice
from fedbench.seeding import numpy_generator

def _folder(root: str | None, name: str) -> Path:
    """The folder holding ``train/`` + ``test/`` or ``all_data/`` (``root`` itself, or its ``data/``)."""
    if root is None:
        raise ConfigError(f"dataset.root must be set for {name} (LEAF's data/{name}/data folder)")
    path = Path(root).expanduser().resolve()
    for candidate in (path, path / "data"):
        if (candidate / "train").is_dir() or (candidate / "all_data").is_dir():
            return candidate
    raise ConfigError(f"dataset.root {str(path)!r} does not hold LEAF's {name} files (train/ and test/, or all_data/, "
                      f"of JSON files); prepare them with LEAF's data/{name}/preprocess.sh (see docs/reference/"
                      "datasets.md) and point dataset.root at data/" + name + "/data")


def read_users(folder: Path, convert: Callable[[list, list], Samples]) -> dict[str, Samples]:
    """Every user's samples in the JSON files of ``folder``, converted to arrays file by file (a full LEAF dataset
    as Python lists would need tens of GB); a user split over several files is merged."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ConfigError(f"dataset.root: {folder} holds no LEAF .json file")
    parts: dict[str, list[Samples]] = {}
    for f in files:
        try:
            payload = json.loads(f.read_text())
            for user in payload["users"]:
                data = payload["user_data"][user]
                if len(data["y"]):
                    parts.setdefault(str(user), []).append(convert(data["x"], data["y"]))
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"dataset.root: {f} is not a LEAF JSON file ({type(err).__name__}: {err}; expected "
                              "'users' and 'user_data': {user: {x, y}})") from err
    return {u: ps[0] if len(ps) == 1 else (np.concatenate([x for x, _ in ps]), np.concatenate([y for _, y in ps]))
            for u, ps in parts.items()}


def load_users(root: str | None, name: str, convert: Callable[[list, list], Samples], fraction: float,
               min_samples: int, test_fraction: float, seed: int, gap: int = 0) -> tuple[list[Samples], list[Samples]]:
    """Per-user (train, test) samples, aligned: LEAF's own split when ``train/`` and ``test/`` exist (users kept
    when they have samples in both), else ``all_data/`` sampled and split here."""
    check_sampling(fraction, min_samples, test_fraction)
    folder = _folder(root, name)
    rng = numpy_generator(seed, "leaf", name)
    if (folder / "train").is_dir():
        train, test = read_users(folder / "train", convert), read_users(folder / "test", convert)
        names = sorted(u for u in train if u in test)
        sizes = [len(train[u][1]) + len(test[u][1]) for u in names]
        names = [names[i] for i in keep_users(sizes, fraction, min_samples, rng)]
        return [train[u] for u in names], [test[u] for u in names]
    everything = read_users(folder / "all_data", convert)
    names = sorted(everything)
    names = [names[i] for i in keep_users([len(everything[u][1]) for u in names], fraction, min_samples, rng)]
    _, train, test = split_users([everything[u] for u in names], test_fraction, rng, gap)
    return train, test


def _femnist_samples(x: list, y: list) -> Samples:
    return np.asarray(x, dtype=np.float32).reshape(-1, 1, 28, 28), np.asarray(y, dtype=np.int64)


def femnist(root: str | None = None, fraction: float = 1.0, min_samples: int = 0, test_fraction: float = 0.1,
            seed: int = 0) -> FederatedData:
    """LEAF FEMNIST: 62 classes (digits, upper and lower case letters) of 28x28 grey images, one user per writer.

    Args:
        root: LEAF's ``data/femnist/data`` folder.
        fraction: share of all samples to keep, by whole users drawn in a seeded order (LEAF's ``--sf``).
        min_samples: drop users with fewer samples (LEAF's ``-k``).
        test_fraction: each user's test share when only ``all_data/`` exists (LEAF's ``--tf`` is 1 minus this).
        seed: seed of the user sampling and of that split.
    """
    train, test = load_users(root, "femnist", _femnist_samples, fraction, min_samples, test_fraction, seed)
    return assemble("femnist", train, test, num_classes=62)


def _shakespeare_samples(targets: str) -> Callable[[list, list], Samples]:
    def convert(x: list, y: list) -> Samples:
        ids = char_ids(x)
        return ids, next_char_targets(ids, np.asarray([char_id(c) for c in y], dtype=np.int64), targets)

    return convert


def shakespeare(root: str | None = None, targets: str = "next_char", fraction: float = 1.0, min_samples: int = 0,
                test_fraction: float = 0.1, seed: int = 0) -> FederatedData:
    """LEAF Shakespeare: next-character prediction over LEAF's 80-character vocabulary, one user per speaking role.

    Inputs are ``(N, 80)`` int64 character ids (:mod:`fedbench.data.text`).

    Args:
        root: LEAF's ``data/shakespeare/data`` folder.
        targets: ``next_char`` (LEAF: the character after each sequence; ``task=classifier``) or ``sequence``
            (the next character at every position; ``task=sequence`` with ``model.all_positions=true``).
        fraction, min_samples, test_fraction, seed: as for :func:`femnist`; the split of ``all_data/`` keeps
            LEAF's gap of 79 samples between a role's train and test sequences (they overlap otherwise).
    """
    require_choice(targets, "dataset.targets", TARGETS)
    train, test = load_users(root, "shakespeare", _shakespeare_samples(targets), fraction, min_samples,
                             test_fraction, seed, gap=79)
    return assemble("shakespeare", train, test, num_classes=VOCAB_SIZE, x_dtype=torch.int64)


def leaf_json(users: dict[str, dict[str, list]]) -> dict[str, Any]:
    """``users`` in LEAF's file layout (what LEAF's scripts write; used by the tests and for converting data)."""
    names = list(users)
    return {"users": names, "num_samples": [len(users[u]["y"]) for u in names], "user_data": users}
