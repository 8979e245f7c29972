"""Loading the handoff's traced model inside another framework's driver without trusting the run folder.

The model crosses into FedML's and Flower's isolated environments as a ``torch.fx``-traced module (``model.pt``), which
only full unpickling can rebuild: ``torch.load(weights_only=True)`` refuses its classes. A run folder may sit in a
shared directory (the multi-machine setting), where someone else could replace ``model.pt`` with a pickle that runs
code. So fedbench hands the driver the SHA-256 of the file it has just written through an environment variable (not
through the folder), and the driver unpickles only those exact bytes: read once, hashed, compared, then loaded from
memory (no window to swap the file between the check and the load).

This file imports only the standard library and torch: the drivers load it by path (they cannot import fedbench).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

ENV = "FEDBENCH_MODEL_SHA256"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_model(path: Path, map_location: Any = None) -> Any:
    """The module in ``path`` if its SHA-256 is the one in ``$FEDBENCH_MODEL_SHA256``; else stop, saying why."""
    expected = os.environ.get(ENV)
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if not expected or actual != expected:
        raise SystemExit(f"refusing to unpickle {path}: its sha256 {actual[:16]}... is not the one fedbench wrote "
                         f"({(expected or 'none given')[:16]}...); the run folder was changed by someone else, or this "
                         f"driver was started without ${ENV}")
    import torch

    # the handoff model: full unpickling of exactly the bytes fedbench wrote and hashed (a traced GraphModule is code)
    return torch.load(io.BytesIO(data), weights_only=False, map_location=map_location)
