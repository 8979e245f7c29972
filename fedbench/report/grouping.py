"""Which settings a set of runs varies, and a readable label for each run's group.

Seeds are replicates (the spread in the figures); every other config key whose value differs
between runs defines the groups. Keys that vary in lockstep with a simpler one (``algorithm.lr``
following ``lr``) are dropped, and ``_target_`` paths are shown as short names.
"""

from __future__ import annotations

from typing import Any, Sequence

from fedbench.report.runs import RunRecord, flatten

IGNORED = ("seed", "output_dir", "resume", "checkpoint_every", "logger", "hydra", "dataset.root", "stop_at_target")


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in IGNORED)


def _short(key: str, value: Any) -> Any:
    if key.endswith("_target_") and isinstance(value, str):
        return value.rsplit(".", 1)[-1]
    return value


def _name(key: str) -> str:
    return key[: -len("._target_")] if key.endswith("._target_") else key


def varying_keys(runs: Sequence[RunRecord]) -> list[str]:
    """Config keys (dotted) whose values differ between ``runs``, simplest first, duplicates dropped."""
    flats = [flatten(r.summary.get("config", {})) for r in runs]
    keys = sorted({k for f in flats for k in f if not _ignored(k)}, key=lambda k: (k.count("."), not k.endswith("_target_"), k))
    chosen, patterns = [], set()
    for key in keys:
        values = [repr(f.get(key)) for f in flats]
        if len(set(values)) < 2:
            continue
        first: dict[str, int] = {}
        pattern = tuple(first.setdefault(v, len(first)) for v in values)
        if pattern in patterns:
            continue
        patterns.add(pattern)
        chosen.append(key)
    return chosen


def group_values(run: RunRecord, keys: Sequence[str]) -> dict[str, Any]:
    """The run's value for each varying key, ``_target_`` paths shortened (``algorithm`` -> fedavg)."""
    flat = flatten(run.summary.get("config", {}))
    out = {}
    for key in keys:
        if key == "algorithm._target_" and run.summary.get("algorithm"):
            out["algorithm"] = run.summary["algorithm"]
        else:
            out[_name(key)] = _short(key, flat.get(key))
    return out


def label(values: dict[str, Any]) -> str:
    """``algorithm=fedavg, num_clients=10`` (``all runs`` when nothing varies)."""
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "all runs"
