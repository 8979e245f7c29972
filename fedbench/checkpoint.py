"""Per-round checkpoints: written atomically, loaded safely, checked against the config.

A checkpoint holds everything needed to continue: the server state (global model, optimizer
moments, control variates), every client's persistent state, the metric rows so far and the
round counter. No RNG state is needed: every draw is keyed by (seed, round, client, purpose),
so a resumed run draws exactly what an uninterrupted one would.

Files are written to a temporary name, fsynced and renamed over the old checkpoint
(``os.replace`` is atomic on POSIX), so a kill at any moment leaves either the old or the new
checkpoint, never a torn one. Loading uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from fedbench.device import to_device

from fedbench.dicts import flatten
from fedbench.errors import ConfigError, RunFolderError

FORMAT = 2  # 2: client states with named fields (algorithm, channel, privacy, buffers)
FILENAME = "checkpoint.pt"
# payload keys that are not the topology's state
META = ("format", "round", "rows", "fingerprint", "config")
# keys that may differ between the run that wrote a checkpoint and the run resuming it
RESUMABLE_DIFFERENCES = ("output_dir", "resume", "checkpoint_every", "rounds", "logger", "stop_at_target", "device",
                         "choices", "allocator")  # choices: derived from the rest, how it was named (fedbench.choices)


class CheckpointError(ConfigError):
    """A checkpoint belongs to a different experiment (or cannot be found where ``resume`` points)."""


class DamagedCheckpoint(RunFolderError, CheckpointError):
    """A checkpoint is unreadable, truncated, of another format or fails its checksum (exit status 5)."""


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved config that must match for a resume (a run may continue on another device: its
    checkpoint holds CPU tensors; ``backend.device`` is ddp's copy of the top-level ``device``; and on another
    machine, whose ``dataset.root`` (``FEDBENCH_DATA``) names the same files at another path)."""
    out = {k: v for k, v in config.items() if k not in RESUMABLE_DIFFERENCES}
    for group, key in (("backend", "device"), ("dataset", "root")):
        if isinstance(out.get(group), dict) and key in out[group]:
            out[group] = {k: v for k, v in out[group].items() if k != key}
    return out


def fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(comparable(config), sort_keys=True, default=str).encode()).hexdigest()[:16]


def differing_keys(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ, simplest first; a key that only copies a simpler differing
    key's change (``task.optimizer.lr`` interpolating ``lr``) is left out."""
    a, b = flatten(theirs), flatten(ours)
    keys = sorted((k for k in set(a) | set(b) if a.get(k) != b.get(k)), key=lambda k: (k.count("."), k))
    shown: list[str] = []
    for key in keys:
        if not any((a.get(k), b.get(k)) == (a.get(key), b.get(key)) for k in shown):
            shown.append(key)
    return shown


def checksum(node: Any) -> str:
    """sha256 over a payload's content (tensor bytes, shapes and dtypes, scalars, keys, in order): stored
    in the checkpoint and verified on load, since torch.load does not verify the zip's CRCs."""
    digest = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            for k in x:
                digest.update(f"K{k!r}".encode())
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            digest.update(f"L{len(x)}".encode())
            for v in x:
                feed(v)
        else:
            digest.update(f"V{x!r}".encode())

    feed(node)
    return digest.hexdigest()


def _remove_stale_temporaries(directory: Path) -> None:
    """Delete temporary files left by writers that were killed mid-write (their pid is gone)."""
    for tmp in directory.glob(f".{FILENAME}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            tmp.unlink(missing_ok=True)


def save(directory: Path, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` (with its checksum) to ``directory/checkpoint.pt``, its tensors on the CPU
    (a GPU run's checkpoint loads anywhere)."""
    payload = {k: v if k in META else to_device(v, torch.device("cpu")) for k, v in payload.items()}  # rows: no tensors
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory)
    final = directory / FILENAME
    tmp = directory / f".{FILENAME}.tmp-{os.getpid()}"
    with tmp.open("wb") as f:
        torch.save({"format": FORMAT, **payload, "checksum": checksum(payload)}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return final


def locate(path: str | Path) -> Path:
    """A checkpoint file given itself, its folder, or a run folder holding ``checkpoint/``."""
    path = Path(path)
    for candidate in (path, path / FILENAME, path / "checkpoint" / FILENAME):
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"resume: no checkpoint at {path} (looked for {FILENAME} there and in checkpoint/)")


def load(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Load and validate a checkpoint for ``config``; errors say what is wrong and never delete it."""
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DamagedCheckpoint(f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}: {first}); "
                              "move it away to start over, or pass resume=<another checkpoint>") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise DamagedCheckpoint(f"checkpoint {path} has format {found}, not {FORMAT} (written by "
                              f"{'an older' if isinstance(found, int) and found < FORMAT else 'another'} fedbench); "
                              "resume=none starts over in this folder, or use a new output directory")
    missing = [k for k in ("round", "rows", "fingerprint", "config", "server") if k not in payload]
    if missing:
        raise DamagedCheckpoint(f"checkpoint {path} lacks {', '.join(missing)} (not written by fedbench, or truncated); "
                              "move it away to start over")
    body = {k: v for k, v in payload.items() if k not in ("format", "checksum")}
    if "checksum" in payload and payload["checksum"] != checksum(body):
        raise DamagedCheckpoint(f"checkpoint {path} fails its checksum (the file was altered or damaged on disk); "
                              "move it away to start over, or pass resume=<another checkpoint>")
    if payload["fingerprint"] != fingerprint(config):
        diff = differing_keys(payload["config"], comparable(config))
        raise CheckpointError(f"checkpoint {path} was written by a different config (differs in: {', '.join(diff)}); "
                              "use a new output directory, or resume=<path> with the matching config")
    return payload


def resume_point(resume: str | None, output_dir: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint to continue from: ``resume=auto`` uses the run folder's own if present,
    ``resume=<path>`` that one (it must exist), ``resume=none`` starts fresh."""
    if resume in (None, "none"):
        return None
    if resume == "auto":
        own = output_dir / "checkpoint" / FILENAME
        return load(own, config) if own.is_file() else None
    return load(locate(resume), config)
