"""The configuration reference of the docs site, generated from ``conf/`` so it cannot drift from it: the flat knobs
of ``conf/config.yaml``, then every config group with every option and every key of each option, with the default as
the YAML file writes it and the file's comments (read by :mod:`fedbench.conf_comments`, the parser behind
``fedbench --help`` too).

The site's build calls :func:`page` (``docs/hooks.py``); ``python -m fedbench.conf_reference`` prints the same page.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from fedbench.cli_help import HIDDEN, SKIPPED_KNOBS, _defaults, groups
from fedbench.conf_comments import Key, header, keys
from fedbench.config import CONF

PRIVATE = ("local",)  # conf/local/: a user's git-ignored site settings (SLURM accounts), never published
_SPECIAL = re.compile(r"([\\|<>*_\[\]])")


def text(value: str) -> str:
    """``value`` as Markdown text inside a table cell: code spans kept, everything else escaped."""
    parts = value.split("`")
    return "`".join(p if i % 2 else _SPECIAL.sub(r"\\\1", p) for i, p in enumerate(parts))


def code(value: str) -> str:
    """``value`` as a code span inside a table cell."""
    return f"`` {value.replace('|', '&#124;')} ``" if "`" in value else f"`{value.replace('|', '&#124;')}`"


def option_groups() -> list[str]:
    """Every folder of ``conf/`` that holds option files, as Hydra names it (``algorithm``, ``hydra/launcher``)."""
    found = {p.parent.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml") if p.parent != CONF}
    return sorted(g for g in found if g.split("/")[0] not in PRIVATE)


def _lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _default(key: Key, data: Any) -> str:
    """The default as written; a list (or a block) written on the lines below, in YAML's flow style."""
    if key.raw:
        return code(key.raw)
    value = _lookup(data, key.path)
    if isinstance(value, dict) and value:
        return "(block)"
    return code(yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...").strip())


def _row(key: Key, data: Any) -> str:
    about = " ".join(t for t in (key.lead, key.comment) if t)
    return f"| `{key.path}` | {_default(key, data)} | {text(about)} |"


def key_table(path: Path) -> list[str]:
    """A table of every key of one YAML file: key, default, comment."""
    found = keys(path)
    if not found:
        return ["(no keys)"]
    data = yaml.safe_load(path.read_text()) or {}
    return ["| key | default | comment |", "|---|---|---|", *(_row(k, data) for k in found)]


def option_section(group: str, path: Path, default: bool) -> list[str]:
    """One option's section: how to choose it, what its header comment says, its keys."""
    name = path.stem
    first = path.read_text().splitlines()[:1]
    package = " (`# @package _global_`: its keys apply to the whole config)" if first == ["# @package _global_"] else ""
    lines = [f"#### `{group}={name}`" + (" (default)" if default else ""), "", f"`conf/{group}/{path.name}`{package}"]
    about = header(path)
    return [*lines, "", *([text(about), ""] if about else []), *key_table(path), ""]


def knobs_section() -> list[str]:
    """``conf/config.yaml``: the flat knobs and blocks (and, apart, the Hydra settings fedbench sets)."""
    config = CONF / "config.yaml"
    data = yaml.safe_load(config.read_text())
    rows = [k for k in keys(config) if k.top != "defaults"]
    knobs = [k for k in rows if k.top not in SKIPPED_KNOBS or k.top in ("output_dir", "choices")]
    hydra = [k for k in rows if k.top == "hydra"]
    return ["## Flat knobs: `conf/config.yaml`", "", text(header(config)), "",
            "Set them as `knob=value`, a block's keys as `block.key=value` (`eval.per_client=true`).", "",
            "| key | default | comment |", "|---|---|---|", *(_row(k, data) for k in knobs), "",
            "#### Hydra settings in `conf/config.yaml`", "",
            "Where runs and sweeps write, and the callbacks of a multirun (`hydra.run.dir=...` changes them).", "",
            "| key | default | comment |", "|---|---|---|", *(_row(k, data) for k in hydra), ""]


def group_section(group: str, defaults: dict[str, tuple[str, ...]]) -> list[str]:
    """A group: its options (the default marked) and a section per option."""
    options = sorted((CONF / group).glob("*.yaml"))
    chosen = defaults.get(group, ())
    names = ", ".join(f"`{p.stem}`" + (" (default)" if p.stem in chosen else "") for p in options)
    out = [f"### `{group}`", "", f"Options: {names}.", ""]
    for path in options:
        out += option_section(group, path, path.stem in chosen)
    return out


def page() -> str:
    """The whole reference page (Markdown)."""
    defaults = _defaults()
    run_groups = [g for g in groups() if g not in PRIVATE]
    others = [g for g in option_groups() if g not in run_groups]
    lines = ["# Configuration reference", "",
             "Every knob, config group, option and key of `conf/`, with its default as the YAML file writes it and the "
             "file's own comments. This page is generated from `conf/` each time the site is built "
             "(`fedbench.conf_reference`, called by `docs/hooks.py`; `uv run python -m fedbench.conf_reference` "
             "prints it), so it says what the files say; `fedbench --help` shows the same knobs and options in short.",
             "", "Choose an option with `group=option` (`algorithm=fedprox`), set one of its keys with "
             "`group.key=value` (`algorithm.mu=0.1`); `+study=...`, `+hpo=...` add a preset.", ""]
    lines += knobs_section()
    lines += ["## Config groups", "", "The groups a run chooses from (`fedbench --help` lists the same).", ""]
    for group in run_groups:
        lines += group_section(group, defaults)
    lines += ["## Presets, study arms and launchers", "",
              "Option files that are not run options of their own: a study's arms (`arm=...`, merged by a study's "
              "sweep), architecture and task presets of the paper studies, the HPO searches (`+hpo=...`), the site "
              f"settings' example and Hydra's launchers (`hydra/launcher=...`). Hidden from `fedbench --help`: "
              f"{', '.join(f'`{h}`' for h in HIDDEN)}.", ""]
    for group in others:
        lines += group_section(group, defaults)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(page())
