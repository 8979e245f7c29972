"""The documentation site stays true (``docs/``, ``mkdocs.yml``; how: ``docs/explanation/evidence.md``, *The docs*):

* it builds with ``mkdocs build --strict``;
* its configuration reference (generated from ``conf/`` by ``fedbench.conf_reference``) lists every option of every
  config group with every key and its default, checked against the YAML files read with a YAML loader, not with the
  generator's own parser;
* the fenced ``bash`` blocks marked ``<!-- runnable -->`` (in the README and the pages) run, with ``rounds=1``;
* the numbers of the results pages are quoted from the committed tables (or included from them) and match them;
* the layout's paths, the CLI reference's columns and exit codes, and every ``group=option`` named exist in the code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedbench import conf_reference
from fedbench.report import quotes
from tests.conftest import CONF, ROOT

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


def test_the_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: no broken link, no missing page or anchor, no warning; the generated reference, the
    notebooks and the reports are pages, and every table of the reference rendered."""
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    html = (site / "reference" / "configuration" / "index.html").read_text()
    rows = sum(len(rows) for rows in sections(conf_reference.page()).values())
    assert html.count("<tr>") - html.count("<thead>") == rows, "a table of the reference did not render"
    assert (site / "notebooks" / "01_distributed_optimization" / "index.html").is_file()
    assert (site / "results" / "privacy" / "index.html").is_file()
    performance = (site / "results" / "performance" / "index.html").read_text()
    assert "fedbench_vectorized" in performance and "<!-- include" not in performance


# --- runnable examples -------------------------------------------------------------------------------------------

RUNNABLE = re.compile(r"^<!-- runnable -->\n```bash\n(?P<body>.*?)^```$", re.M | re.S)
TITLED = re.compile(r'^```\w+ title="(?P<path>[^"]+)"\n(?P<body>.*?)^```$', re.M | re.S)
NOT_TRAINING = ("--help", "--cfg", "-sc", "--hydra-help")


def pages() -> list[Path]:
    """The README and every Markdown page of the site's own folder."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def runnable_blocks() -> dict[str, tuple[Path, str]]:
    """``page:line`` -> (page, block) for every runnable block; a block that two pages show runs once."""
    found: dict[str, tuple[Path, str]] = {}
    for page in pages():
        text = page.read_text()
        for match in RUNNABLE.finditer(text):
            if all(body != match["body"] for _, body in found.values()):
                where = f"{page.relative_to(ROOT)}:{text[:match.start()].count(chr(10)) + 1}"
                found[where] = (page, match["body"])
    return found


def script(block: str) -> str:
    """The shell script a runnable block runs: ``uv run`` dropped (the test's environment is first on PATH), comments
    dropped, and ``rounds=1`` appended to every fedbench command that trains."""
    lines = []
    for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).replace("uv run ", "").strip()
        trains = re.search(r"(^|\s)(fedbench|python -m fedbench)(\s|$)", line) is not None
        if trains and not any(flag in line.split() for flag in NOT_TRAINING):
            line += " rounds=1"
        if line:
            lines.append(line)
    return "\n".join(lines)


def test_the_runnable_blocks_are_found_and_rewritten():
    blocks = runnable_blocks()
    assert any(str(where).startswith("docs/tutorials/quick-start.md") for where in blocks)
    assert any(str(where).startswith("README.md") for where in blocks), "the README's grid example is runnable"
    assert script("uv run fedbench -m algorithm=a,b seed=0,1 rounds=30 \\\n  hydra.sweep.dir=x   # four jobs\n"
                  "uv run fedbench --help\nuv run fedbench-report x") == \
        "fedbench -m algorithm=a,b seed=0,1 rounds=30 hydra.sweep.dir=x rounds=1\nfedbench --help\nfedbench-report x"


@pytest.mark.slow
@pytest.mark.parametrize("where", sorted(runnable_blocks()))
def test_a_runnable_example_runs(where, tmp_path):
    """The block runs in a fresh folder (its page's ``title="path"`` blocks written there first), exit status 0."""
    page, block = runnable_blocks()[where]
    for match in TITLED.finditer(page.read_text()):
        target = tmp_path / match["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(match["body"])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script(block)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{where}:\n{script(block)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"


# --- the results pages --------------------------------------------------------------------------------------------

RESULTS = ROOT / "docs" / "results"
DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+")


def unquoted(text: str) -> str:
    """``text`` without its quotes, include lines, HTML comments, code and link targets: the prose numbers are in."""
    for pattern in (quotes.QUOTE, re.compile(r"<!--.*?-->", re.S), re.compile(r"^```.*?^```$", re.M | re.S),
                    re.compile(r"`[^`]*`"), re.compile(r"\]\([^)]*\)")):
        text = pattern.sub(" ", text)
    return text


def results_pages() -> list[Path]:
    """The site's results section: its own pages and every Markdown file of reports/, which it mounts."""
    return [*sorted(RESULTS.glob("*.md")), *sorted((ROOT / "reports").rglob("*.md"))]


def test_the_numbers_on_the_results_pages_match_the_committed_tables():
    """Every quoted number equals its table's value, read now (a regenerated table and a stale page disagree)."""
    checked = 0
    for page in results_pages():
        text = page.read_text()
        assert quotes.check(text) == [], f"{page.relative_to(ROOT)}: stale numbers (python -m fedbench.report.quotes)"
        checked += len(quotes.QUOTE.findall(text))
    assert checked > 50


def test_the_results_pages_write_no_number_by_hand():
    """On the site's own results pages a decimal number is a quote or comes from an included table, never typed."""
    for page in RESULTS.glob("*.md"):
        found = DECIMAL.findall(unquoted(page.read_text()))
        assert not found, f"{page.relative_to(ROOT)}: numbers written by hand: {found}"
    assert DECIMAL.findall(unquoted("it took 0.394 s")) == ["0.394"]
    assert DECIMAL.findall(unquoted("<!--q t.csv | * | a | .3f -->0.394<!--/q--> and `0.5`")) == []


def test_the_performance_page_includes_the_committed_benchmark_tables():
    """The hook puts each benchmark report's table, as committed now, into the performance page."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    page = (RESULTS / "performance.md").read_text()
    built = hooks.include(page)
    for report in ("reports/bench/clients.md", "reports/bench/inprocess_vs_plain.md"):
        assert f"<!-- include {report} -->" in page
        rows = [line for line in (ROOT / report).read_text().splitlines() if line.startswith("|")]
        assert len(rows) > 3 and all(row in built for row in rows), report
    with pytest.raises(FileNotFoundError):
        hooks.include("<!-- include reports/bench/no_such_table.md -->")


# --- names and paths the pages state ------------------------------------------------------------------------------

OPTION = re.compile(r"(?<![\w./-])\+?(?P<group>[a-z_]+(?:/[a-z_]+)?)=(?P<options>[a-z0-9_]+(?:,[a-z0-9_]+)*)\b")
NOT_OPTIONS = {"mine", "wine", "fedhalf", "cyclic", "gridq", "clipmean", "user",  # the pages' own-part examples
               "logistic",  # the error table's example of an unknown option
               "ray"}  # hydra/launcher=ray: Hydra's own Ray launcher plugin, which two-machines.md names as an alternative


def test_every_group_option_the_pages_name_exists_in_conf():
    groups = {p.parent.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml") if p.parent != CONF}
    named = 0
    for page in pages():
        for match in OPTION.finditer(page.read_text()):
            if match["group"] not in groups:
                continue
            for option in set(match["options"].split(",")) - NOT_OPTIONS:
                assert (CONF / match["group"] / f"{option}.yaml").is_file(), \
                    f"{page.relative_to(ROOT)}: {match['group']}={option} is not an option in conf/"
                named += 1
    assert named > 100


KEY = re.compile(r"(?<![\w./+~-])(?P<key>[a-z_]+(?:\.[a-z0-9_]+)+)=")
BLOCKS = ("eval", "client_speed", "network", "hpo", "pipeline")  # config.yaml's blocks and the presets' own


def known_keys() -> dict[str, set[str]]:
    """Group (or ``""`` for config.yaml and ``# @package _global_`` presets) -> every dotted key its files set."""
    out: dict[str, set[str]] = {"": set(flatten(yaml.safe_load((CONF / "config.yaml").read_text())))}
    for path in CONF.rglob("*.yaml"):
        if path.parent != CONF:
            text = path.read_text()
            group = "" if text.startswith("# @package _global_") else path.parent.relative_to(CONF).as_posix()
            out.setdefault(group, set()).update(flatten(yaml.safe_load(text)))
    return out


def unknown_keys(text: str, known: dict[str, set[str]]) -> list[str]:
    """The ``group.key=`` and ``block.key=`` settings of ``text`` that no YAML file of conf/ has."""
    bad = []
    for match in KEY.finditer(text):
        key = match["key"]
        group, rest = key.split(".", 1)
        if group in known and group:
            bad += [key] if rest not in known[group] else []
        elif group in BLOCKS:
            bad += [key] if key not in known[""] else []
    return bad


def test_every_group_key_the_pages_set_exists_in_conf():
    """``partitioner.alpha=0.1``, ``eval.per_client=true``: keys a page sets without ``+`` (which adds a key) exist."""
    known = known_keys()
    assert unknown_keys("partitioner.alpha=0.1 partitioner.alpah=1 eval.per_clients=true +task.scheduler=x", known) \
        == ["partitioner.alpah", "eval.per_clients"]
    for page in pages():
        assert unknown_keys(page.read_text(), known) == [], page.relative_to(ROOT)


def test_the_layouts_paths_exist():
    block = (ROOT / "docs" / "reference" / "layout.md").read_text().split("```text\n")[1].split("```")[0]
    paths = [line.split()[0].rstrip(",") for line in block.splitlines() if "git-ignored" not in line]
    assert len(paths) > 40
    assert [p for p in paths if not (ROOT / p).exists()] == []


def _table(text: str, heading: str) -> list[list[str]]:
    """The cells of the first table under ``heading``."""
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("|---"):
            continue
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[1:]


def test_the_cli_reference_lists_the_codes_standard_columns_and_exit_codes():
    from fedbench.cli import STATUS
    from fedbench.metrics import COLUMNS

    text = (ROOT / "docs" / "reference" / "cli.md").read_text()
    columns = [name for row in _table(text, "## `metrics.csv` columns") for name in re.findall(r"`(\w+)`", row[0])]
    assert columns == list(COLUMNS)
    codes = {row[1].strip("`"): int(row[0]) for row in _table(text, "## Exit codes") if row[0].isdigit() and row[1]}
    assert codes == STATUS


def test_the_readmes_links_lead_to_files():
    """The README is read on GitHub, outside the site: its relative links must name files of the repository."""
    links = re.findall(r"\]\((?!https?://)([^)#]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    assert len(links) > 20
    assert [link for link in links if not (ROOT / link).is_file()] == []
