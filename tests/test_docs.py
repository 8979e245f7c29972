"""The documentation's configuration reference (generated from ``conf/`` by ``fedbench.conf_reference``) lists every
option of every config group with every key and its default, checked here against the YAML files read with a YAML
loader, not with the generator's own parser."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from fedbench import conf_reference
from tests.conftest import CONF

PRIVATE = ("local",)  # conf/local/: a user's git-ignored site settings, never published
HEADING = re.compile(r"^#{2,4} (?P<title>.+)$")
ROW = re.compile(r"^\| `(?P<key>[^`]+)` \| (?P<default>.+?) \| (?P<comment>.*) \|$")


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Every key of a loaded YAML mapping, nested keys dotted, blocks included."""
    out: dict[str, Any] = {}
    for key, value in (data or {}).items():
        path = f"{prefix}{key}"
        out[path] = value
        if isinstance(value, dict):
            out.update(flatten(value, f"{path}."))
    return out


def sections(page: str) -> dict[str, dict[str, str]]:
    """Heading -> {key: default cell} of the table rows under it."""
    out: dict[str, dict[str, str]] = {}
    title = ""
    for line in page.splitlines():
        if (heading := HEADING.match(line)) is not None:
            title = heading["title"]
            out.setdefault(title, {})
        elif (row := ROW.match(line)) is not None:
            assert row["key"] not in out[title], f"{title}: key {row['key']} listed twice"
            out[title][row["key"]] = row["default"]
    return out


def cell_value(cell: str) -> Any:
    """The value a default cell shows (a code span holding YAML)."""
    text = cell.strip()
    text = text[3:-3] if text.startswith("`` ") else text[1:-1]
    return yaml.safe_load(text.replace("&#124;", "|"))


def check_keys(where: str, rows: dict[str, str], data: dict, skip: tuple[str, ...] = ()) -> None:
    """Every key of ``data`` has a row with its default; a block is ``(block)`` and its keys have rows, a mapping
    written in flow style (``{type: float, low: 0.01}``) is one value shown whole; no row names another key."""
    expected = {k: v for k, v in flatten(data).items() if k.split(".")[0] not in skip}
    whole = [k for k, v in expected.items() if isinstance(v, dict) and v and rows.get(k, "(block)") != "(block)"]
    expected = {k: v for k, v in expected.items() if not any(k.startswith(f"{w}.") for w in whole)}
    assert set(rows) == set(expected), (f"{where}: missing {sorted(set(expected) - set(rows))}, "
                                        f"extra {sorted(set(rows) - set(expected))}")
    for key, value in expected.items():
        if isinstance(value, dict) and value and key not in whole:
            assert rows[key] == "(block)", f"{where}: {key} is a block, the page says {rows[key]}"
        else:
            assert cell_value(rows[key]) == value, f"{where}: {key} defaults to {value!r}, the page says {rows[key]}"


@pytest.fixture(scope="module")
def page() -> dict[str, dict[str, str]]:
    return sections(conf_reference.page())


def test_the_reference_lists_every_option_of_every_group_with_every_key_and_default(page):
    found = {p.parent.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml") if p.parent != CONF}
    groups = sorted(g for g in found if g.split("/")[0] not in PRIVATE)
    assert {"algorithm", "dataset", "topology", "hydra/launcher", "arm"} <= set(groups)
    checked = 0
    for group in groups:
        options = sorted((CONF / group).glob("*.yaml"))
        assert f"`{group}`" in page, f"group {group} is missing from the reference"
        for path in options:
            title = next((t for t in page if t.startswith(f"`{group}={path.stem}`")), None)
            assert title is not None, f"option {group}={path.stem} is missing from the reference"
            check_keys(f"{group}={path.stem}", page[title], yaml.safe_load(path.read_text()))
            checked += 1
    assert checked == sum(len(list((CONF / g).glob("*.yaml"))) for g in groups) > 150


def test_the_reference_lists_every_knob_of_config_yaml_and_marks_each_groups_default(page):
    data = yaml.safe_load((CONF / "config.yaml").read_text())
    knobs = next(rows for title, rows in page.items() if title.startswith("Flat knobs"))
    hydra = next(rows for title, rows in page.items() if title.startswith("Hydra settings"))
    check_keys("conf/config.yaml", {**knobs, **hydra}, data, skip=("defaults",))
    for entry in data["defaults"]:
        if isinstance(entry, dict):
            for group, option in entry.items():
                for name in option if isinstance(option, list) else [option]:
                    assert f"`{group}={name}` (default)" in page, f"{group}={name} is not marked as the default"


def test_a_key_missing_from_the_page_or_a_wrong_default_is_caught():
    rows = {"a": "`1`", "b": "(block)", "b.c": "`x`"}
    check_keys("toy", rows, {"a": 1, "b": {"c": "x"}})
    with pytest.raises(AssertionError, match="missing"):
        check_keys("toy", rows, {"a": 1, "b": {"c": "x", "d": 2}})
    with pytest.raises(AssertionError, match="defaults to 2"):
        check_keys("toy", rows, {"a": 2, "b": {"c": "x"}})
    with pytest.raises(AssertionError, match="extra"):
        check_keys("toy", {**rows, "e": "`3`"}, {"a": 1, "b": {"c": "x"}})
    check_keys("toy", {"p": "`{type: float, low: 0.1}`"}, {"p": {"type": "float", "low": 0.1}})
    with pytest.raises(AssertionError, match="defaults to"):
        check_keys("toy", {"p": "`{type: float, low: 0.1}`"}, {"p": {"type": "float", "low": 0.2}})
