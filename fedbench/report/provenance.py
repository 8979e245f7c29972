"""Runs of different code versions in one report: keys older summaries lack are filled with their defaults (so they
do not split a group on their own), and a report that mixes commits says so (stderr and ``systems_report.md``)."""

from __future__ import annotations

import inspect
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from fedbench.provenance import code_version
from fedbench.report.runs import RunRecord, flatten

CONFIG = Path(__file__).resolve().parents[2] / "conf" / "config.yaml"
_MISSING = object()


@lru_cache(maxsize=1)
def _knob_defaults() -> dict[str, Any]:
    """The flat knobs' defaults from ``conf/config.yaml`` (unresolved; interpolations are left out)."""
    from omegaconf import OmegaConf

    node = OmegaConf.load(CONFIG)
    return {k: v for k, v in flatten(OmegaConf.to_container(node, resolve=False)).items()
            if not (isinstance(v, str) and "${" in v) and not k.startswith(("defaults", "hydra"))}


@lru_cache(maxsize=256)
def _factory_default(target: str, name: str) -> Any:
    """The default of parameter ``name`` of the factory ``target`` (``_MISSING`` if it has none or cannot load)."""
    try:
        from hydra.utils import get_object

        param = inspect.signature(get_object(target)).parameters.get(name)
    except Exception:  # noqa: BLE001 - a factory of another code version: leave the key missing
        return _MISSING
    return _MISSING if param is None or param.default is inspect.Parameter.empty else param.default


def default_for(config: dict[str, Any], key: str) -> Any:
    """The value a run that lacks ``key`` (dotted) ran with by today's defaults: a flat knob's from
    ``conf/config.yaml``, a part's option from its own factory's signature (the run's ``_target_``)."""
    parts = key.split(".")
    if len(parts) == 1 or key in _knob_defaults():
        return _knob_defaults().get(key, _MISSING)
    node: Any = config
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    target = node.get("_target_") if isinstance(node, dict) else None
    return _factory_default(target, parts[-1]) if isinstance(target, str) else _MISSING


def _set(config: dict[str, Any], key: str, value: Any) -> None:
    *path, last = key.split(".")
    node = config
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value


def fill_defaults(runs: Sequence[RunRecord]) -> dict[Path, list[str]]:
    """Give every run the config keys other runs have and it lacks (summaries written before an option existed),
    with their defaults; returns the keys filled per run folder."""
    flats = [flatten(r.summary.get("config", {})) for r in runs]
    every = {k for f in flats for k in f}
    filled: dict[Path, list[str]] = {}
    for run, flat in zip(runs, flats):
        for key in sorted(every - set(flat)):
            value = default_for(run.summary.get("config", {}), key)
            if value is not _MISSING:
                _set(run.summary.setdefault("config", {}), key, value)
                filled.setdefault(run.path, []).append(key)
    return filled


def versions(runs: Sequence[RunRecord]) -> Counter:
    """How many runs each code version (commit, ``+dirty``, or ``unknown``) wrote."""
    return Counter(code_version(r.summary) for r in runs)


def warning(runs: Sequence[RunRecord]) -> str | None:
    """One line naming the code versions when the runs come from more than one (None otherwise)."""
    counts = versions(runs)
    if len(counts) < 2:
        return None
    return (f"the {len(runs)} runs come from {len(counts)} code versions ("
            + ", ".join(f"{v}: {n}" for v, n in counts.most_common())
            + "); numbers from different versions may not be comparable")


def section(runs: Sequence[RunRecord], filled: dict[Path, list[str]]) -> list[str]:
    """The report's provenance paragraph: the code version(s), uv.lock hashes, and the keys filled with defaults."""
    counts = versions(runs)
    locks = sorted({str((r.summary.get("provenance") or {}).get("uv_lock_sha256")) for r in runs})
    lines: list[str] = []
    mixed = warning(runs)
    lines.append(f"**Mixed code versions:** {mixed}." if mixed else
                 f"Every run was written by code version `{next(iter(counts))}` (uv.lock `{', '.join(locks)}`).")
    if mixed:
        lines.append(f" uv.lock hashes: {', '.join(f'`{h}`' for h in locks)}.")
    if filled:
        keys = sorted({k for ks in filled.values() for k in ks})
        lines.append(f" {len(filled)} run(s) predate some options; their missing keys were filled with today's defaults "
                     f"so they group with the others: {', '.join(f'`{k}`' for k in keys)}.")
    return ["## Provenance", "", "".join(lines), ""]
