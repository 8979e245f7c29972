"""Characters as token ids, as LEAF's Shakespeare model reads them.

LEAF (Caldas et al. 2018), ``models/utils/language_utils.py``: ``ALL_LETTERS`` is an 80-character vocabulary;
``word_to_indices`` maps a string to ``ALL_LETTERS.find(c)`` per character and ``letter_to_vec`` one-hot encodes
the target character at that index. ``find`` gives -1 for a character outside the vocabulary, which
``letter_to_vec`` turns into the last letter (Python's ``vec[-1]``) and TensorFlow's embedding lookup rejects on
the CPU; fedbench maps such characters to the last letter, ``}`` (id 79), for inputs and targets alike.

Next-character targets come in two forms: ``next_char`` (LEAF: one target per sequence, the character after
it) and ``sequence`` (the next character at every position: the sequence shifted by one, then LEAF's target,
as TFF's Shakespeare task and Reddi et al. 2021 train). Text shorter than ``seq_len`` (Hugging Face text
datasets) is left-padded with :data:`PAD_ID` (one past the vocabulary: use ``model.vocab_size=81``), and padded
target positions hold :data:`IGNORE`, which the sequence task leaves out of its loss and accuracy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from fedbench.errors import require_choice

LEAF_LETTERS = "\n !\"&'(),-.0123456789:;>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz}"
VOCAB_SIZE = len(LEAF_LETTERS)  # 80
PAD_ID = VOCAB_SIZE  # input padding (needs an embedding row of its own)
IGNORE = -100  # a padded target position (PyTorch's cross_entropy ignore_index)
TARGETS = ("next_char", "sequence")

_TABLE = np.full(65536, VOCAB_SIZE - 1, dtype=np.int64)  # code point -> id (all others: the last letter)
_TABLE[[ord(c) for c in LEAF_LETTERS]] = np.arange(VOCAB_SIZE)


def char_id(c: str) -> int:
    """LEAF's id of one character (unknown characters: the last letter's id, 79)."""
    i = LEAF_LETTERS.find(c)
    return i if i >= 0 else VOCAB_SIZE - 1


def char_ids(texts: Sequence[str], seq_len: int | None = None) -> np.ndarray:
    """``(N, seq_len)`` ids of ``texts``: LEAF's ``word_to_indices`` per text; longer texts keep their last
    ``seq_len`` characters, shorter ones are left-padded with :data:`PAD_ID`. Without ``seq_len`` every text must
    have the same length (LEAF's sequences all have 80 characters)."""
    length = seq_len if seq_len is not None else (len(texts[0]) if len(texts) else 0)
    if length and all(len(t) == length for t in texts):  # one encode for all (LEAF: millions of sequences)
        codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        return _TABLE[np.minimum(codes, len(_TABLE) - 1)].reshape(len(texts), length)
    out = np.full((len(texts), length), PAD_ID, dtype=np.int64)
    for i, text in enumerate(texts):
        text = text[-length:] if length else ""
        if seq_len is None and len(text) != length:
            raise ValueError(f"text {i} has {len(text)} characters, the first has {length}; set a sequence length")
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = _TABLE[np.minimum(codes, len(_TABLE) - 1)]  # code points past the table are not in the vocabulary
        out[i, length - len(ids):] = ids
    return out


def next_char_targets(x: np.ndarray, y: np.ndarray, targets: str) -> np.ndarray:
    """LEAF's targets ``y`` (N,) as they are (``next_char``) or the next character at every position of ``x``
    (``sequence``: ``x`` shifted left by one, then ``y``); positions whose input is padding get :data:`IGNORE`."""
    require_choice(targets, "dataset.targets", TARGETS)
    if targets == "next_char":
        return y
    seq = np.concatenate([x[:, 1:], y[:, None]], axis=1)
    seq[x == PAD_ID] = IGNORE
    return seq
