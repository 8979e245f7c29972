"""``fedbench --help``: the groups a user picks (with their options and what each is) and the flat knobs (with their
defaults and comments), read from ``conf/`` so the page cannot drift. Groups that are not run options (a study's
arms, presets) are left out; ``--hydra-help`` still shows Hydra's own page."""

from __future__ import annotations

from pathlib import Path

from fedbench.conf_comments import header_lines, keys
from fedbench.config import CONF

HIDDEN = ("arm", "fedavg_arch", "hpo", "local.example", "leaf_arm", "fedopt_task", "hydra")


def _first_comment(path: Path) -> str:
    """The first line of the comment at the top of ``path``: what the option is."""
    return next(iter(header_lines(path)), "")


def _defaults() -> dict[str, tuple[str, ...]]:
    """Each group's default option(s) from ``conf/config.yaml``'s defaults list."""
    from omegaconf import OmegaConf

    out: dict[str, tuple[str, ...]] = {}
    for entry in OmegaConf.to_container(OmegaConf.load(CONF / "config.yaml")).get("defaults", []):
        if isinstance(entry, dict):
            for group, option in entry.items():
                out[group] = tuple(option) if isinstance(option, list) else (str(option),)
    return out


def groups() -> list[str]:
    """The config groups a run chooses from (``conf/<group>/``), the hidden ones left out."""
    return sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in HIDDEN)


SKIPPED_KNOBS = ("defaults", "hydra", "output_dir", "choices")  # not inputs (choices is filled in by fedbench)


def knobs() -> list[tuple[str, str]]:
    """(``name: default``, comment) of every knob of ``conf/config.yaml`` in file order, a block's keys dotted
    (``eval.per_client: auto``); a comment continued on the next lines is joined (``fedbench.conf_comments``)."""
    return [(f"{key.path}: {key.raw}", key.comment) for key in keys(CONF / "config.yaml")
            if key.top not in SKIPPED_KNOBS and key.path.count(".") <= 1 and key.raw
            and not key.path.rsplit(".", 1)[-1].startswith("_")]


def help_text() -> str:
    lines = ["fedbench: federated learning and distributed optimization benchmarks", "",
             "Usage: fedbench [group=option ...] [knob=value ...]          one run",
             "       fedbench -m group=a,b knob=1,2 [hydra/launcher=...]   a grid (one job per combination)",
             "       fedbench-report <run or sweep folders> [--out DIR]   figures and the systems report",
             "       fedbench-hpo +hpo=<search>                           Optuna search", "",
             "Groups (choose with group=option; * marks the default):"]
    defaults = _defaults()
    for group in groups():
        options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
        lines.append(f"  {group}: {', '.join(o + ('*' if o in defaults.get(group, ()) else '') for o in options)}")
        for option in options:
            about = _first_comment(CONF / group / f"{option}.yaml")
            if about:
                lines.append(f"      {option:<22} {about[:90]}")
    lines += ["", "Knobs (knob=value or block.knob=value; defaults from conf/config.yaml):"]
    lines += [f"  {setting:<32} {comment}".rstrip() for setting, comment in knobs()]
    lines += ["", "Inspect: fedbench --cfg job [overrides] prints the composed config; --hydra-help shows Hydra's flags.",
              "Shell completion: eval \"$(fedbench -sc install=bash)\". Docs: docs/ (uv run mkdocs serve)."]
    return "\n".join(lines)
