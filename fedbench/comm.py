"""Communication accounting: messages and wire bytes per round, counted in one place.

Every sampled client receives one downlink message (the broadcast server-state keys) and
every upload is one uplink message whose size is the sum of its tensors' bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from fedbench.algorithms.base import State, Upload
from fedbench.params import nbytes


@dataclass(frozen=True)
class RoundComm:
    messages_up: int
    messages_down: int
    bytes_up: int
    bytes_down: int


def count_round(server: State, broadcast: Sequence[str], receivers: int, uploads: Sequence[Upload]) -> RoundComm:
    """Messages and bytes of one star round: ``receivers`` downloads and one message per upload."""
    down = nbytes({k: server[k] for k in broadcast})
    up = sum(nbytes(u.tensors) for u in uploads)
    return RoundComm(len(uploads), receivers, up, down * receivers)
