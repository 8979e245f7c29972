"""MkDocs hooks of fedbench's site (mkdocs.yml: ``hooks``): pages that come from the repository rather than docs/.

* ``reference/configuration.md`` is generated from ``conf/`` at every build (``fedbench.conf_reference.page``), so the
  configuration reference cannot drift from the YAML files and no generated copy is committed;
* ``notebooks/*.ipynb`` appear as ``notebooks/*.ipynb`` (mkdocs-jupyter renders them as committed, never executing
  them; they are plain files read from the repository root, as mkdocs-jupyter needs, not generated ones);
* every file of ``reports/`` appears under ``results/`` (``reports/privacy/README.md`` is the page
  ``results/privacy/``), figures and tables included, so the report pages' relative links work on the site as on
  GitHub;
* a line ``<!-- include reports/bench/clients.md -->`` in a page is replaced by that file's text (its ``# `` title left
  out), so a committed table is shown, never copied (``docs/results/performance.md``).
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
GENERATED = "reference/configuration.md"
INCLUDE = re.compile(r"^<!-- include (?P<path>[\w./-]+) -->$", re.M)


def notebooks(root: Path = ROOT) -> list[str]:
    """The notebooks' site paths, which are also their paths in the repository."""
    return [f"notebooks/{p.name}" for p in sorted((root / "notebooks").glob("*.ipynb"))]


def mounted(root: Path = ROOT) -> dict[str, Path]:
    """Site path -> repository file, for every file of reports/."""
    out = {}
    for path in sorted((root / "reports").rglob("*")):
        if path.is_file():
            out[f"results/{path.relative_to(root / 'reports').as_posix()}"] = path
    return out


@event_priority(100)  # before mkdocs-jupyter's on_files, which must see the notebooks to render them
def on_files(files: Files, config) -> Files:
    from fedbench.conf_reference import page

    files.append(File.generated(config, GENERATED, content=page()))
    for uri in notebooks():
        files.append(File(uri, src_dir=str(ROOT), dest_dir=config.site_dir, use_directory_urls=config.use_directory_urls))
    for uri, path in mounted().items():
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def include(markdown: str, root: Path = ROOT) -> str:
    """``markdown`` with every ``<!-- include <path> -->`` line replaced by that repository file's text, without its
    first ``# `` title line; a missing file fails the build."""
    def body(match: re.Match) -> str:
        path = (root / match["path"]).resolve()
        if root.resolve() not in path.parents:
            raise ValueError(f"include {match['path']}: outside the repository")
        lines = path.read_text().splitlines()
        return "\n".join(lines[1:] if lines and lines[0].startswith("# ") else lines).strip()

    return INCLUDE.sub(body, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return include(markdown)
