"""The command line checked before Hydra runs anything and before torch is imported, so a typo is answered in about a
second, in one line: the override syntax (with a hint for non-ASCII values), the overrides' keys and resolvers, every
group choice and every flat knob of each configuration a sweep will run, and the output folder's writability. What
depends on a part's factory (``partitioner.alpha`` against ``dirichlet``'s signature) is checked when the run builds
it, still before any work.
"""

from __future__ import annotations

import os
import re
import tempfile
from itertools import chain
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf

from fedbench.config import CONF, compose_strictly
from fedbench.errors import ConfigError, RunFolderError
from fedbench.validate import validate_knobs

# Hydra flags after which there is nothing to check here (help pages, printing the config, shell completion, ...)
LEAVE_TO_HYDRA = ("--help", "-h", "--hydra-help", "--version", "--cfg", "-c", "--info", "-i", "--shell-completion",
                  "-sc", "--resolve", "--package", "-p", "--experimental-rerun")
MULTIRUN = ("-m", "--multirun")
RESOLVERS = ("mul", "div", "oc.env")  # resolvers an override may use: fedbench's own and the environment
LONGEST_KEY = 100


def precheck(argv: Sequence[str]) -> None:
    """Raise ConfigError (or RunFolderError for an unusable output folder) for the first bad part of ``argv``."""
    if any(a.split("=", 1)[0] in LEAVE_TO_HYDRA for a in argv):
        return
    overrides = [a for a in argv if not a.startswith("-")]
    parsed = parse(overrides)
    for override in parsed:
        _check_key(override)
        _check_resolvers(override)
    configs = [o for o in parsed if not o.key_or_group.startswith("hydra") or o.key_or_group == "hydra.searchpath"]
    for combination in combinations(configs, multirun=any(a in MULTIRUN for a in argv)):
        validate_knobs(compose_strictly(combination))
    for override in parsed:
        if override.key_or_group in ("hydra.run.dir", "hydra.sweep.dir") and not override.is_sweep_override():
            check_writable(override.key_or_group, str(override.value()))


def parse(overrides: Sequence[str]) -> list:
    """Hydra's own parse of the overrides; a syntax error is one line (with a hint for non-ASCII text)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed += parser.parse_overrides([text])
        except OverrideParseException:
            key = text.split("=", 1)[0].lstrip("+~")
            hint = ""
            if not text.isascii():
                value = text.split("=", 1)[-1]
                hint = f"; non-ASCII text must be quoted: {key}='{value}' (in a shell: \"{key}='{value}'\")"
            raise ConfigError(f"{_short(key)}: the override {_short(text)!r} is not valid override syntax{hint} (see "
                              "https://hydra.cc/docs/advanced/override_grammar/basic)") from None
    return parsed


def _check_key(override) -> None:  # noqa: ANN001 - Hydra's Override
    key = override.key_or_group
    if len(key) > LONGEST_KEY:
        raise ConfigError(f"{_short(key)}: a key of {len(key)} characters is not a fedbench setting (a paste error?)")


def _check_resolvers(override) -> None:  # noqa: ANN001
    text = override.input_line.split("=", 1)[-1]
    for name in re.findall(r"\$\{\s*([\w.]+)\s*:", text):
        if name not in RESOLVERS:
            raise ConfigError(f"{_short(override.key_or_group)}: the override uses the resolver '{name}', which fedbench "
                              f"does not evaluate in overrides (allowed: {list(RESOLVERS)} and plain ${{key}} "
                              "interpolations); give the value itself")


def combinations(parsed: Sequence, multirun: bool) -> list[list[str]]:
    """The override lists a command will run: one, or for a sweep the base plus each swept value in turn (every value
    of every swept key is checked; their product is not enumerated)."""
    base = [o.input_line for o in parsed if not o.is_sweep_override()]
    sweeps = [o for o in parsed if o.is_sweep_override()]
    if sweeps and not multirun:
        o = sweeps[0]
        raise ConfigError(f"{o.key_or_group}: {o.input_line!r} sweeps several values; add -m (--multirun) to run one "
                          "job per value")
    firsts = {o.key_or_group: f"{o.get_key_element()}={next(iter(_values(o)))}" for o in sweeps}
    out = [base + list(firsts.values())]
    for o in sweeps:
        others = [line for key, line in firsts.items() if key != o.key_or_group]
        out += [base + others + [f"{o.get_key_element()}={value}"] for value in _values(o)]
    return out


def _values(override) -> list[str]:  # noqa: ANN001
    try:
        return list(override.sweep_string_iterator())
    except Exception:  # noqa: BLE001 - an interval sweep (for a sweeper plugin): nothing to enumerate
        return []


def check_writable(field: str, path: str) -> None:
    """The folder (or, where it does not exist yet, its nearest existing parent) accepts new files."""
    if "${" in path:
        return  # resolved by Hydra at run time (${now:...}); checked when the run creates it
    target = Path(path).expanduser()
    existing = next((p for p in chain([target], target.parents) if p.exists()), Path("."))
    try:
        probe = tempfile.mkdtemp(prefix=".fedbench-probe-", dir=existing if existing.is_dir() else existing.parent)
        os.rmdir(probe)
    except OSError as err:
        raise RunFolderError(f"{field}: cannot write under {existing} ({err.strerror or err}); choose a folder you can "
                             "write") from None


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} characters)"


def flat_knob_names() -> list[str]:
    """The flat knobs of ``conf/config.yaml`` (for messages and the help page)."""
    node = OmegaConf.load(CONF / "config.yaml")
    return [k for k in node if k not in ("defaults", "hydra")]
