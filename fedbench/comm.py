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

    def __add__(self, other: "RoundComm") -> "RoundComm":
        return RoundComm(self.messages_up + other.messages_up, self.messages_down + other.messages_down,
                         self.bytes_up + other.bytes_up, self.bytes_down + other.bytes_down)


def count_round(server: State, broadcast: Sequence[str], receivers: int, uploads: Sequence[Upload],
                down_each: int | None = None) -> RoundComm:
    """Messages and bytes of one star round: ``receivers`` downloads (``down_each`` bytes each when a
    compressor encoded the broadcast, else the broadcast keys' fp32 size) and one message per upload
    (its wire bytes when compressed)."""
    down = nbytes({k: server[k] for k in broadcast}) if down_each is None else down_each
    up = sum(nbytes(u.tensors) if u.wire_bytes is None else u.wire_bytes for u in uploads)
    return RoundComm(len(uploads), receivers, up, down * receivers)


def raw_bytes(server: State, broadcast: Sequence[str], receivers: int, uploads: Sequence[Upload]) -> tuple[int, int]:
    """(up, down): what the round's messages would occupy as fp32 (for ``compression_ratio``)."""
    return sum(nbytes(u.tensors) for u in uploads), nbytes({k: server[k] for k in broadcast}) * receivers
