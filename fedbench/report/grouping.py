"""Which settings a set of runs varies, and a readable label for each run's group.

Seeds are replicates (the spread in the figures); the run's choices (``algorithm=fedadam``, see
:mod:`fedbench.choices`) and every other config key whose value differs between runs define the groups.
Keys that vary in lockstep with one kept before them (``algorithm.lr`` following ``lr``) are dropped,
and ``_target_`` paths are shown as short names.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

from fedbench import choices as run_choices
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


def display_name(key: str) -> str:
    """``choices.algorithm`` / ``algorithm._target_`` -> ``algorithm``."""
    key = key.removeprefix("choices.")
    return key[: -len("._target_")] if key.endswith("._target_") else key


IDENTITY = tuple(f"choices.{g}" for g in ("algorithm", "topology", "paradigm", "dataset", "partitioner", "model",
                                            "backend", "compressor", "aggregator", "attack", "privacy", "server_optimizer"))


def flat_config(run: RunRecord) -> dict[str, Any]:
    """The run's config flattened, with its choices (:mod:`fedbench.choices`) as ``choices.<group>``."""
    config = run.summary.get("config", {})
    return {**flatten({k: v for k, v in config.items() if k != run_choices.KEY}),
            **{f"choices.{g}": o for g, o in run_choices.of(config).items()}}


def varying_keys(runs: Sequence[RunRecord]) -> list[str]:
    """Config keys (dotted) whose values differ between ``runs``: the choices first (``choices.algorithm``, ...), then
    the other keys, simplest first. A key is kept only if it splits a group the keys kept before it form: dropped are a
    key that copies another (``algorithm.lr`` = ``lr``), a part's option that changes only with the part
    (``algorithm.mu`` with ``algorithm``) and a preset's consequence (``server_optimizer`` with ``algorithm=fedadam``)."""
    flats = [flat_config(r) for r in runs]
    keys = sorted({k for f in flats for k in f if not _ignored(k)},
                  key=lambda k: (k not in IDENTITY, IDENTITY.index(k) if k in IDENTITY else 0, k.count("."), k))
    chosen: list[str] = []
    for key in keys:
        values = [repr(f.get(key)) for f in flats]
        if len(set(values)) < 2:
            continue
        within: dict[tuple, set[str]] = defaultdict(set)
        for f, value in zip(flats, values):
            within[tuple(repr(f.get(k)) for k in chosen)].add(value)
        if any(len(seen) > 1 for seen in within.values()):
            chosen.append(key)
    return chosen


def group_values(run: RunRecord, keys: Sequence[str]) -> dict[str, Any]:
    """The run's value for each varying key, named without ``choices.`` (``algorithm`` -> fedadam) and with
    ``_target_`` paths shortened."""
    flat = flat_config(run)
    out = {}
    for key in keys:
        if key == "backend._target_" and run.summary.get("backend"):  # backend=fedml has no _target_
            out["backend"] = run.summary["backend"]
        else:
            out[display_name(key)] = _short(key, flat.get(key))
    return out


def label(values: dict[str, Any]) -> str:
    """``algorithm=fedavg, num_clients=10`` (``all runs`` when nothing varies); a key that does not
    apply to the run (None, e.g. ``topology.graph`` of a star) is left out."""
    return ", ".join(f"{k}={v}" for k, v in values.items() if v is not None) or "all runs"
