"""Which settings a set of runs varies, and a readable label for each run's group.

Seeds are replicates (the spread in the figures); every other config key whose value differs
between runs defines the groups. Keys that vary in lockstep with a simpler one (``algorithm.lr``
following ``lr``) are dropped, and ``_target_`` paths are shown as short names.
"""

from __future__ import annotations

from typing import Any, Sequence

from fedbench.report.runs import RunRecord, flatten

IGNORED = ("seed", "output_dir", "resume", "checkpoint_every", "logger", "callbacks", "hydra", "dataset.root",
           "stop_at_target", "runner")


def _ignored(key: str) -> bool:
    # a part's own ``seed`` option interpolates the run's seed: a replicate too
    return any(key == k or key.startswith(k + ".") for k in IGNORED) or key.endswith(".seed")


def _short(key: str, value: Any) -> Any:
    if key.endswith("_target_") and isinstance(value, str):
        return value.rsplit(".", 1)[-1]
    return value


def _name(key: str) -> str:
    return key[: -len("._target_")] if key.endswith("._target_") else key


IDENTITY = ("algorithm._target_", "algorithm.name", "topology._target_", "server_optimizer._target_", "paradigm", "dataset._target_", "partitioner._target_", "model._target_")


def varying_keys(runs: Sequence[RunRecord]) -> list[str]:
    """Config keys (dotted) whose values differ between ``runs``: the parts (algorithm, paradigm,
    dataset, ...) first, then the rest, simplest first. Dropped: a key whose values copy an
    already chosen key's (``algorithm.lr`` = ``lr``), and an option of a part that changes only
    together with that part (``algorithm.upload`` when FedSGD meets FedAvg)."""
    flats = [flatten(r.summary.get("config", {})) for r in runs]
    keys = sorted({k for f in flats for k in f if not _ignored(k)},
                  key=lambda k: (k not in IDENTITY, IDENTITY.index(k) if k in IDENTITY else 0, k.count("."), k))
    chosen: list[str] = []
    seen_values: set[tuple] = set()
    for key in keys:
        values = tuple(repr(f.get(key)) for f in flats)
        if len(set(values)) < 2 or values in seen_values:
            continue
        parent = key.split(".")[0] + "._target_"
        if "." in key and key != parent and parent in chosen:
            targets = [repr(f.get(parent)) for f in flats]
            if all(len({v for v, t in zip(values, targets) if t == target}) == 1 for target in set(targets)):
                continue
        seen_values.add(values)
        chosen.append(key)
    return chosen


def group_values(run: RunRecord, keys: Sequence[str]) -> dict[str, Any]:
    """The run's value for each varying key, ``_target_`` paths shortened (``algorithm`` -> fedavg)."""
    flat = flatten(run.summary.get("config", {}))
    out = {}
    for key in keys:
        if key in ("algorithm._target_", "algorithm.name") and run.summary.get("algorithm"):
            out["algorithm"] = run.summary["algorithm"]
        elif key == "backend._target_" and run.summary.get("backend"):  # backend=fedml has no _target_
            out["backend"] = run.summary["backend"]
        else:
            out[_name(key)] = _short(key, flat.get(key))
    return out


def label(values: dict[str, Any]) -> str:
    """``algorithm=fedavg, num_clients=10`` (``all runs`` when nothing varies); a key that does not
    apply to the run (None, e.g. ``topology.graph`` of a star) is left out."""
    return ", ".join(f"{k}={v}" for k, v in values.items() if v is not None) or "all runs"
