"""Read a config YAML of ``conf/`` together with its comments: what ``fedbench --help`` and the generated
configuration reference (``fedbench.conf_reference``, the docs site's *Configuration* page) show, from one parser.

A YAML loader drops comments, so the keys are read line by line here (the files are block-style YAML with one key per
line; flow values such as ``{type: float, low: 0.01}`` stay one value). A key's comment is its trailing ``# ...``,
continued by comment lines that start in the same column on the lines below; the full-line comments right above a key
(no blank line between) are its ``lead``; the comment lines at the top of the file, before the first key, describe the
file itself (:func:`header`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[^\s#:-][^:#]*?|'[^']*'|\"[^\"]*\"):(?:\s+(?P<rest>.*))?$")


@dataclass(frozen=True)
class Key:
    """One key of a YAML file: its dotted path, the value as written (``""`` for a block or a list written on the
    lines below), its trailing comment and the full-line comment right above it."""

    path: str
    raw: str
    comment: str
    lead: str = ""

    @property
    def top(self) -> str:
        return self.path.split(".", 1)[0]


def _split_comment(rest: str) -> tuple[str, str, int]:
    """(value, comment, the comment's offset in ``rest`` or -1); a ``#`` inside quotes is not a comment."""
    quote = None
    for i, ch in enumerate(rest):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or rest[i - 1] in " \t"):
            return rest[:i].strip(), rest[i + 1:].strip(), i
    return rest.strip(), "", -1


def _unbalanced(value: str) -> bool:
    return value[:1] in "[{" and value.count("[") + value.count("{") > value.count("]") + value.count("}")


def _comment_text(line: str) -> str:
    return line.strip()[1:].strip()


def header_lines(path: Path) -> list[str]:
    """The comment lines at the top of ``path`` (before its first key), their ``#`` removed; ``# @package`` lines
    and blank lines left out."""
    out = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("# @package"):
            continue
        if not line.lstrip().startswith("#"):
            break
        out.append(_comment_text(line))
    return [t for t in out if t]


def header(path: Path) -> str:
    """The comment lines at the top of ``path`` joined into one text: what the file is."""
    return " ".join(header_lines(path))


def keys(path: Path) -> list[Key]:
    """Every key of ``path`` in file order, nested keys dotted (``eval.per_client``, ``hpo.params.lr``)."""
    out: list[Key] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the open blocks
    lead: list[str] = []
    column = -1  # the column of the last key's trailing comment, which a comment line there continues
    seen_key = False
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            lead, column = [], -1
            continue
        if stripped.startswith("#"):
            if out and line.index("#") == column:
                last = out[-1]
                out[-1] = Key(last.path, last.raw, f"{last.comment} {_comment_text(line)}".strip(), last.lead)
            elif seen_key:
                lead.append(_comment_text(line))
                column = -1
            continue
        match = _KEY.match(line)
        if match is None:  # a list item or a flow value continued from the key above: part of that key
            if out and _unbalanced(out[-1].raw):
                last = out[-1]
                out[-1] = Key(last.path, f"{last.raw} {_split_comment(stripped)[0]}", last.comment, last.lead)
            column = -1
            continue
        seen_key = True
        indent, name = len(match["indent"]), match["key"].strip().strip("'\"")
        value, comment, offset = _split_comment(match["rest"] or "")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([*(k for _, k in stack), name])
        out.append(Key(dotted, value, comment, " ".join(lead)))
        column = match.start("rest") + offset if offset >= 0 else -1
        lead = []
        if not value:
            stack.append((indent, name))
    return out
