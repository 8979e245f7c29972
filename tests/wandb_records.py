"""Read the records of an offline ``run-*.wandb`` file (W&B's LevelDB-style log of protobufs).

Layout: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each
``crc32 (4) | length (2, little endian) | type (1: full, 2: first, 3: middle, 4: last) | data``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768


def read_records(path: Path) -> list[pb.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending, out = 7, b"", []
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (length == 0 and kind == 0):  # block trailer / padding
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            out.append(pending + chunk)
    return [pb.Record.FromString(chunk) for chunk in out]


def _items(items) -> dict:
    return {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in items}


def history(records: list[pb.Record]) -> list[dict]:
    """The logged metric rows, as dicts."""
    return [_items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]


def summary(records: list[pb.Record]) -> dict:
    """The run summary after all updates."""
    out: dict = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            out.update(_items(r.summary.update))
    return out


def run_info(records: list[pb.Record]) -> pb.RunRecord:
    return next(r.run for r in records if r.WhichOneof("record_type") == "run")


def config(records: list[pb.Record]) -> dict:
    """The run's config (W&B stores each key's value under ``{"value": ...}``; its own ``_wandb`` key dropped)."""
    out: dict = {}
    for r in records:
        kind = r.WhichOneof("record_type")
        items = r.run.config.update if kind == "run" else r.config.update if kind == "config" else []
        for key, value in _items(items).items():
            out[key] = value.get("value") if isinstance(value, dict) and "value" in value else value
    out.pop("_wandb", None)
    return out
