"""Execute the course notebooks from their jupytext sources and write the paired ``.ipynb`` with outputs.

    uv run python notebooks/execute.py                 # all of notebooks/0*.py
    uv run python notebooks/execute.py 02_admm.py      # one

The ``.py`` files (jupytext percent format) are the sources to edit and review; the ``.ipynb`` files are
generated from them, executed, and committed so that their outputs show real results. The test suite
(tests/test_notebooks.py) executes every source and checks that the committed notebook matches it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def execute(source: Path, timeout: int = 900, progress: bool = False):  # -> nbformat.NotebookNode
    """The notebook of ``source`` (a jupytext ``.py``), executed in a fresh kernel with ``notebooks/`` as cwd;
    ``progress`` prints a line per code cell (its number of all, seconds so far)."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    t0 = time.perf_counter()

    def done(cell, cell_index: int) -> None:  # noqa: ANN001 - nbclient's hook
        if progress and cell_index in code:
            print(f"  {source.name}: cell {code.index(cell_index) + 1}/{len(code)} done, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)

    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}},
                   on_cell_complete=done).execute()
    return nb


def main(names: list[str]) -> int:
    import jupytext

    sources = [HERE / n for n in names] if names else sorted(HERE.glob("0*.py"))
    for k, source in enumerate(sources, 1):
        print(f"notebook {k}/{len(sources)}: {source.name} ...", flush=True)
        t0 = time.perf_counter()
        nb = execute(source, progress=True)
        jupytext.write(nb, source.with_suffix(".ipynb"))
        print(f"{source.name}: executed in {time.perf_counter() - t0:.0f} s -> {source.with_suffix('.ipynb').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
