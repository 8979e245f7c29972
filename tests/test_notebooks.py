"""The course notebooks: each jupytext source runs top to bottom, and the committed .ipynb is its executed twin."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(p.name for p in NOTEBOOKS.glob("0*.py"))


def _executor():
    spec = importlib.util.spec_from_file_location("notebook_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code(cells) -> list[str]:
    return ["".join(c["source"]).strip() for c in cells if c["cell_type"] == "code"]


def test_there_are_four_course_notebooks():
    assert SOURCES == ["01_distributed_optimization.py", "02_admm.py", "03_consensus.py", "04_scaling.py"]


@pytest.mark.parametrize("source", SOURCES)
def test_committed_notebook_is_the_executed_source(source):
    import jupytext

    committed = json.loads((NOTEBOOKS / source).with_suffix(".ipynb").read_text())
    assert _code(committed["cells"]) == _code(jupytext.read(NOTEBOOKS / source).cells), \
        "the .ipynb is out of date: run `uv run python notebooks/execute.py " + source + "`"
    outputs = [o for c in committed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert all(c.get("execution_count") for c in committed["cells"] if c["cell_type"] == "code")
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # real figures, not empty cells


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("source", SOURCES)
def test_notebook_runs_top_to_bottom(source):
    nb = _executor().execute(NOTEBOOKS / source)  # raises CellExecutionError naming the failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
