"""The systems report's HPO section for runs that are trials of a ``fedbench.hpo`` study.

A trial's run folder is ``<study>/trials/<number>``; the study folder's ``hpo_summary.json`` (written by
:mod:`fedbench.hpo.outputs`) gives the search settings, the trial counts, the best trial or the Pareto
front, and the plots, which are copied next to the report.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from fedbench.report import analysis as A
from fedbench.report.runs import RunRecord

SUMMARY = "hpo_summary.json"


def studies(runs: Sequence[RunRecord]) -> dict[Path, dict[str, Any]]:
    """The studies the runs are trials of: study folder -> its ``hpo_summary.json``."""
    found: dict[Path, dict[str, Any]] = {}
    for run in runs:
        folder = Path(run.path).resolve().parent.parent
        if folder not in found and (folder / SUMMARY).exists():
            found[folder] = json.loads((folder / SUMMARY).read_text())
    return found


def _values(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {A.fmt(v)}" for k, v in values.items())


def section(runs: Sequence[RunRecord], out: Path) -> list[str]:
    """Markdown lines describing each study (empty when no run is a trial)."""
    lines: list[str] = []
    for folder, s in studies(runs).items():
        objectives = ", ".join(f"{o['metric']} ({o['direction']})" for o in s["objectives"])
        counts = ", ".join(f"{n} {state}" for state, n in s["trials"].items() if n)
        lines += [f"### Study `{s['study']}` (`+hpo={s['name']}`)", "",
                  f"Searched {', '.join(f'`{p}`' for p in s['params'])} with the {s['sampler']} sampler and the "
                  f"{s['pruner']} pruner for {objectives}; trials: {counts} (`{os.path.relpath(folder / 'trials.csv', out)}`).", ""]
        if s.get("best"):
            b = s["best"]
            lines += [A.md_table(["best trial", "objective", "overrides"],
                                 [[b["trial"], _values(b["values"]), " ".join(b["overrides"])]]), "",
                      f"Rerun it: `{b['command']}`", ""]
        elif s.get("pareto_front"):
            rows = [[e["trial"], _values(e["values"]), " ".join(e["overrides"])] for e in s["pareto_front"]]
            lines += ["Pareto front:", "", A.md_table(["trial", "objectives", "overrides"], rows), ""]
        for key, name in (s.get("plots") or {}).items():
            if (folder / name).exists():
                target = out / f"hpo_{s['study']}_{name}"
                shutil.copyfile(folder / name, target)
                lines += [f"![{key}]({target.name})", ""]
    return lines
