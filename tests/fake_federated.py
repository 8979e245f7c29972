"""Write tiny LEAF (FEMNIST, Shakespeare), CIFAR-100 and Hugging Face datasets in their real on-disk formats."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from fedbench.data.leaf import leaf_json

SHAKESPEARE_TEXT = "To be, or not to be: that is the question. Whether 'tis nobler in the mind to suffer the slings"


def write_leaf_femnist(root: Path, sizes: dict[str, tuple[int, int]] | None = None, split: bool = True) -> Path:
    """LEAF's ``data/femnist/data`` with ``train/`` + ``test/`` (``split``) or only ``all_data/``; ``sizes`` maps
    each writer to (train, test) samples (all_data: their sum). Users are written unsorted, over two files."""
    sizes = sizes or {"f0003_12": (9, 3), "f0001_07": (6, 2), "f0002_40": (12, 4)}
    folder = root / "femnist" / "data"
    rng = np.random.default_rng(0)
    data = {u: [{"x": rng.random((n, 784)).round(3).tolist(), "y": rng.integers(0, 62, n).tolist()} for n in nm]
            for u, nm in sizes.items()}
    names = list(sizes)
    for i, part in enumerate((names[:1], names[1:])):  # two JSON files, as LEAF writes several
        if split:
            for j, which in enumerate(("train", "test")):
                (folder / which).mkdir(parents=True, exist_ok=True)
                users = {u: data[u][j] for u in part}
                (folder / which / f"all_data_{i}_niid_0_keep_0_{which}_9.json").write_text(json.dumps(leaf_json(users)))
        else:
            (folder / "all_data").mkdir(parents=True, exist_ok=True)
            users = {u: {"x": data[u][0]["x"] + data[u][1]["x"], "y": data[u][0]["y"] + data[u][1]["y"]} for u in part}
            (folder / "all_data" / f"all_data_{i}.json").write_text(json.dumps(leaf_json(users)))
    return folder


def shakespeare_samples(text: str, seq_len: int = 80) -> dict[str, list]:
    """LEAF's Shakespeare samples of a role's text: every window of ``seq_len`` characters and the next one."""
    return {"x": [text[i:i + seq_len] for i in range(len(text) - seq_len)],
            "y": [text[i + seq_len] for i in range(len(text) - seq_len)]}


def write_leaf_shakespeare(root: Path, split: bool = True, repeat: int = 2) -> Path:
    """LEAF's ``data/shakespeare/data`` for two roles (train/ + test/: 60 and the rest of each role's samples, or
    all_data/), each role's text :data:`SHAKESPEARE_TEXT` (reversed for the second) ``repeat`` times."""
    folder = root / "shakespeare" / "data"
    roles = {"THE_TRAGEDY_OF_HAMLET_HAMLET": SHAKESPEARE_TEXT * repeat,
             "AS_YOU_LIKE_IT_ROSALIND": SHAKESPEARE_TEXT[::-1] * repeat}
    samples = {u: shakespeare_samples(t) for u, t in roles.items()}
    if not split:
        (folder / "all_data").mkdir(parents=True, exist_ok=True)
        (folder / "all_data" / "all_data.json").write_text(json.dumps(leaf_json(samples)))
        return folder
    for which, cut in (("train", slice(0, 60)), ("test", slice(60, None))):
        (folder / which).mkdir(parents=True, exist_ok=True)
        users = {u: {"x": s["x"][cut], "y": s["y"][cut]} for u, s in samples.items()}
        (folder / which / f"all_data_niid_0_keep_0_{which}_9.json").write_text(json.dumps(leaf_json(users)))
    return folder


def cifar100_labels(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(fine, coarse) labels of ``n`` samples: fine = i mod 100, coarse = fine mod 20 (each fine under one coarse)."""
    fine = np.arange(n) % 100
    return fine, fine % 20


def write_cifar100(root: Path, n_train: int = 200, n_test: int = 100) -> Path:
    """``root/cifar-100-python/{train,test,meta}`` pickled as the python-version files are."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        fine, coarse = cifar100_labels(n)
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": fine.tolist(),
                 "coarse_labels": coarse.tolist(), "filenames": [f"img{i}.png" for i in range(n)],
                 "batch_label": f"{name} batch"}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"fine_label_names": [f"f{i}" for i in range(100)], "coarse_label_names": [f"c{i}" for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return root


def write_hf_images(path: Path, writers: int = 4, per_writer: int = 6, size: int = 12) -> Path:
    """A ``DatasetDict`` (train only) saved with ``save_to_disk``: grey PIL images, a ClassLabel ``character``
    of 62 classes and a ``writer_id`` column (the layout of flwrlabs/femnist)."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    n = writers * per_writer
    features = datasets.Features({"image": datasets.Image(), "writer_id": datasets.Value("string"),
                                  "character": datasets.ClassLabel(num_classes=62)})
    rows = {"image": [Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)) for _ in range(n)],
            "writer_id": [f"w{i % writers}" for i in range(n)], "character": (np.arange(n) % 62).tolist()}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(str(path))
    return path


def write_hf_text(path: Path) -> Path:
    """A ``Dataset`` saved with ``save_to_disk`` in flwrlabs/shakespeare's layout: ``character_id``, ``x`` (80
    characters), ``y`` (the next character)."""
    import datasets

    a, b = shakespeare_samples(SHAKESPEARE_TEXT), shakespeare_samples(SHAKESPEARE_TEXT[::-1])
    rows = {"character_id": ["HAMLET"] * len(a["y"]) + ["ROSALIND"] * len(b["y"]), "x": a["x"] + b["x"],
            "y": a["y"] + b["y"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(path))
    return path
