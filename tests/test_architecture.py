"""The architecture stays as designed: layers that import only downward (import-linter's contract in pyproject.toml),
no import cycle between modules, and small units (no file of fedbench over 250 lines, no function over 60)."""

import ast
import subprocess
import sys

import grimp

from tests.conftest import ROOT

PACKAGE = ROOT / "fedbench"


def test_the_layers_contract_holds():
    # in a subprocess: import-linter reconfigures logging, which would silence fedbench's logger for later tests
    code = f"import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]


def test_no_module_imports_itself_back_through_others():
    graph = grimp.build_graph("fedbench", include_external_packages=False)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                cycles.append(f"{module} -> {imported} -> ... -> {module}")
    assert not cycles, "\n".join(cycles)


def _units():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "env" in path.relative_to(PACKAGE).parts:  # FedML's driver runs in its own environment, not fedbench's
            continue
        yield path, path.read_text()


def test_no_file_over_250_lines():
    long = [f"{p.relative_to(ROOT)}: {len(text.splitlines())}" for p, text in _units() if len(text.splitlines()) > 250]
    assert not long, long


def test_no_function_over_60_lines():
    long = []
    for path, text in _units():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1}")
    assert not long, long
