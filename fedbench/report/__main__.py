"""``python -m fedbench.report <run or sweep dirs...> [--out reports/<name>]``

Reads only run folders (``summary.json`` with the resolved config, ``metrics.csv``,
``partition.json``, ``rank_times.csv``), groups runs by the settings they vary (seeds are
replicates) and writes seaborn PNGs, ``summary_table.csv`` and ``systems_report.md``.
Unfinished or unreadable runs are listed with the reason, not plotted (``--strict``: exit with status 1 when
any is); with nothing usable it says what is missing and exits with status 1. The report goes next to the runs it
reads (``<first folder>/report``) unless ``--out`` says otherwise, never into a tracked folder by default.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Sequence

from fedbench.report.runs import find_run_dirs, load_run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fedbench.report", description=__doc__.split("\n\n")[1])
    parser.add_argument("paths", nargs="+", type=Path, help="run folders or sweep folders holding them")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write (default: <the first folder>/report, next to the runs it reads)")
    parser.add_argument("--title", default="fedbench systems report", help="the report's title")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when any run folder was skipped")
    args = parser.parse_args(argv)
    args.out = args.out or args.paths[0] / "report"
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        print(f"fedbench.report: no such folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    records = [load_run(p) for p in find_run_dirs(args.paths)]
    if not records:
        print(f"fedbench.report: no run folders under {', '.join(map(str, args.paths))} (a run folder holds "
              "metrics.csv and summary.json; has the sweep started?)", file=sys.stderr)
        return 1
    print(f"fedbench.report: reading {len(records)} run folder(s) ...", file=sys.stderr)
    finished = [r for r in records if not r.problem]
    problems = [r for r in records if r.problem]
    for bad in problems:
        print(f"fedbench.report: skipping {bad.path}: {bad.problem}", file=sys.stderr)
    if not finished:
        print(f"fedbench.report: none of the {len(records)} run folder(s) can be reported (each is listed above with "
              "why); an unfinished sweep: rerun it (finished jobs are skipped, unfinished ones resume) or wait for it",
              file=sys.stderr)
        return 1
    from fedbench.report.provenance import warning
    from fedbench.report.systems_report import write_report  # pandas/seaborn only when there is work

    mixed = warning(finished)
    if mixed:
        print(f"fedbench.report: warning: {mixed}", file=sys.stderr)

    command = "uv run python -m fedbench.report " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    print(f"fedbench.report: writing figures and tables for {len(finished)} run(s) to {args.out} ...", file=sys.stderr)
    path = write_report(finished, problems, args.out, command, args.title)
    print(f"wrote {path} and {len(list(args.out.glob('*.png')))} figures ({len(finished)} runs, {len(problems)} skipped)")
    if problems and args.strict:
        print(f"fedbench.report: --strict: {len(problems)} run folder(s) skipped (listed above)", file=sys.stderr)
        return 1
    return 0


def entry() -> None:
    """The console script (``fedbench-report`` / ``fedbench-hpo``)."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
