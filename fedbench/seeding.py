"""Randomness derived from (seed, round, client, purpose).

Every random draw in a run comes from a generator built from a key, never from
global state that depends on execution order. A client therefore sees the same
batches whether it runs first or last, in-process or on another rank, and a
resumed run draws exactly what an uninterrupted one would have drawn.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def _key(seed: int, parts: tuple[int | str, ...]) -> list[int]:
    words = [int(seed)]
    for part in parts:
        words.append(zlib.crc32(part.encode()) if isinstance(part, str) else int(part))
    return words


def derive_seed(seed: int, *parts: int | str) -> int:
    """A 63-bit seed that depends only on ``seed`` and ``parts`` (ints or purpose strings)."""
    state = np.random.SeedSequence(_key(seed, parts)).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def torch_generator(seed: int, *parts: int | str, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded from ``(seed, *parts)``, on the CPU unless ``device`` names another (for a
    library that draws on the device with it, as opacus' DP-SGD noise does)."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *parts))


def numpy_generator(seed: int, *parts: int | str) -> np.random.Generator:
    """A NumPy ``Generator`` seeded from ``(seed, *parts)``."""
    return np.random.default_rng(np.random.SeedSequence(_key(seed, parts)))
