"""Numbers quoted in prose, generated from the committed result tables so the prose cannot drift.

A quoted number sits between two HTML comments (invisible when the Markdown is rendered)::

    rounds to 97 %: <!--q reports/fedavg_mnist/summary_table.csv | partitioner=iid, lr=0.2 | rounds to target | .0f -->41<!--/q-->

* the source: a CSV table (``summary_table.csv``) or a JSON file, relative to the repository root;
* for a CSV, the row: comma-separated ``key=value`` items that must all appear among the items of the row's
  ``group`` label, and ``@column=value`` items that other columns must equal (exactly one row must match; ``*``
  for a one-row table); for JSON, a dotted path (list indices allowed: ``results.0.results.plain.round_s.median``),
  and the row part is ``-``;
* the column (CSV) or ``-`` (JSON);
* a format: a Python format spec (``.3f``, ``.0f``, ``.1%``), or ``x`` for a ratio written ``1.23x``.

``python -m fedbench.report.quotes`` checks every quote of the files it is given (default: the README and every
Markdown file under ``reports/`` and ``docs/``) and exits 1 naming each stale one; ``--write`` rewrites them from the tables. A test runs the
check, so a regenerated table and the prose quoting it cannot disagree.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[2]
def default_files() -> list[str]:
    """The README and every Markdown page under ``reports/`` and ``docs/`` (relative to the repository root)."""
    pages = [p for folder in ("reports", "docs") for p in sorted((ROOT / folder).rglob("*.md"))]
    return ["README.md", *(str(p.relative_to(ROOT)) for p in pages)]
QUOTE = re.compile(r"<!--q (?P<spec>.*?)-->(?P<value>.*?)<!--/q-->", re.S)


class QuoteError(ValueError):
    """A quote whose source, row or column cannot be found."""


def _items(label: str) -> set[str]:
    return {part.strip() for part in label.split(",")}


def _csv_cell(path: Path, row: str, column: str) -> str:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if row.strip() == "*":
        matches = rows
    else:
        items = _items(row)
        columns = dict(i[1:].split("=", 1) for i in items if i.startswith("@"))
        wanted = {i for i in items if not i.startswith("@")}
        matches = [r for r in rows if wanted <= _items(r.get("group", ""))
                   and all(r.get(k) == v for k, v in columns.items())]
    if len(matches) != 1:
        raise QuoteError(f"{path.relative_to(ROOT)}: {len(matches)} rows match {row!r} (need exactly 1)")
    if column not in matches[0]:
        raise QuoteError(f"{path.relative_to(ROOT)}: no column {column!r} (columns: {list(matches[0])})")
    return matches[0][column]


def _json_value(path: Path, dotted: str) -> Any:
    node: Any = json.loads(path.read_text())
    for part in dotted.split("."):
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError) as err:
            raise QuoteError(f"{path.relative_to(ROOT)}: no {dotted!r} ({part!r} missing)") from err
    return node


def render(spec: str) -> str:
    """The text a quote's ``spec`` (``source | row | column | format``) stands for, read from its table."""
    try:
        source, row, column, fmt = (part.strip() for part in spec.split("|"))
    except ValueError:
        raise QuoteError(f"quote {spec!r}: expected 'source | row | column | format'") from None
    path = ROOT / source
    if not path.is_file():
        raise QuoteError(f"quote {spec!r}: no file {source}")
    raw = _json_value(path, row) if path.suffix == ".json" else _csv_cell(path, row, column)
    value = float(raw)
    return f"{value:.2f}x" if fmt == "x" else format(value, fmt)


def check(text: str) -> list[tuple[str, str, str]]:
    """(spec, written, expected) for every quote of ``text`` whose written value differs from its table."""
    return [(m["spec"], m["value"], render(m["spec"])) for m in QUOTE.finditer(text) if m["value"] != render(m["spec"])]


def rewrite(text: str) -> str:
    """``text`` with every quote's value regenerated from its table."""
    return QUOTE.sub(lambda m: f"<!--q {m['spec']}-->{render(m['spec'])}<!--/q-->", text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fedbench.report.quotes", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="Markdown files (default: the README and every page under reports/ "
                        "and docs/)")
    parser.add_argument("--write", action="store_true", help="rewrite stale quotes from their tables")
    args = parser.parse_args(argv)
    stale = 0
    for name in args.files or default_files():
        path = ROOT / name if not Path(name).is_absolute() else Path(name)
        text = path.read_text()
        try:
            found = check(text)
            if args.write and found:
                path.write_text(rewrite(text))
        except QuoteError as err:
            print(f"fedbench.report.quotes: {name}: {err}", file=sys.stderr)
            return 2
        for spec, written, expected in found:
            print(f"{name}: {written!r} should be {expected!r} ({spec.strip()})", file=sys.stderr)
        stale += 0 if args.write else len(found)
        print(f"{name}: {len(QUOTE.findall(text))} quotes, {len(found)} {'rewritten' if args.write else 'stale'}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
