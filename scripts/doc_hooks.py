"""Pages and navigation that the documentation site generates at build time (an MkDocs hook).

- ``reference/<module>.md``: one API page per public module of ``neuromorph`` (no module or package
  whose name starts with ``_``), rendered from the docstrings by mkdocstrings.
- ``results.md``: ``benchmarks/RESULTS.md`` as a page, so the method pages can link to the measurements.
- the navigation: it lists the pages that exist when the site is built, so a tutorial notebook or a
  method page that has not been written yet is simply absent, never a broken link.

Run by ``mkdocs build`` (``hooks:`` in mkdocs.yml); not meant to be run directly.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PACKAGE = REPO / "neuromorph"

# The order of the hand-written pages; any other page in docs/methods/ follows in alphabetical order.
METHOD_ORDER = ["mpr", "mpbn", "delays", "hoyer", "masking", "qcfs", "delta", "maxformer", "feast", "hdsnn",
                "surrogates", "se-adlif", "sparse"]
GUIDES = [("Data layout and streaming", "layout.md"), ("Architecture and the layer protocol", "architecture.md"),
          ("Your own models with the CLI", "user-models.md"), ("NIR and the peer libraries", "nir-peers.md")]


def public_modules() -> list[str]:
    """Dotted names of every public module and package of neuromorph, sorted."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__" or any(p.startswith("_") for p in parts):
            continue
        names.append(".".join(parts))
    return names


def page_title(path: Path) -> str:
    """The first Markdown heading of a page (``# Title``), else its file name."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def notebook_title(path: Path) -> str:
    """The first heading of a tutorial notebook's first markdown cell, else its file name."""
    import json

    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except ValueError:
        return path.stem
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", [])).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem.split("_", 1)[-1].replace("_", " ").capitalize()


LINK = re.compile(r"\[([^\]]+)\]\((?!https?:|#|mailto:)([^)\s]+)\)")


def results_page() -> str:
    """benchmarks/RESULTS.md with relative links (to files that are not site pages) turned into paths."""
    text = (REPO / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    return LINK.sub(lambda m: f"{m.group(1)} (`{m.group(2)}`)", text)


def api_pages() -> list[tuple[str, str, str]]:
    """(module, page path, page text) for one reference page per public module."""
    pages = []
    for module in public_modules():
        page = "reference/" + module.replace(".", "/") + ".md"
        is_package = (REPO / module.replace(".", "/") / "__init__.py").exists()
        # A package page shows its docstring; its members are documented on the module pages.
        members = "      members: false\n" if is_package else ""
        text = (f"# `{module}`\n\n::: {module}\n    options:\n{members}      show_root_heading: false\n"
                "      show_root_toc_entry: false\n")
        pages.append((module, page, text))
    return pages


def navigation(api: list[tuple[str, str, str]]) -> list:
    """The site's nav (mkdocs.yml form) from the pages that exist."""
    nav: list = [{"Home": "index.md"}, {"Installation": "installation.md"}, {"Concepts": "concepts.md"}]
    notebooks = sorted((DOCS / "tutorials").glob("[0-9][0-9]_*.ipynb"))
    overview = [{"Overview": "tutorials/README.md"}] if (DOCS / "tutorials" / "README.md").exists() else []
    if notebooks:
        nav.append({"Tutorials": overview + [{notebook_title(p): f"tutorials/{p.name}"} for p in notebooks]})
    methods = sorted((p for p in (DOCS / "methods").glob("*.md") if p.stem != "index"),
                     key=lambda p: (METHOD_ORDER.index(p.stem) if p.stem in METHOD_ORDER else len(METHOD_ORDER),
                                    p.stem))
    if methods:
        nav.append({"Methods": [{page_title(p): f"methods/{p.name}"} for p in methods]})
    nav.append({"Guides": [{title: name} for title, name in GUIDES if (DOCS / name).exists()]})
    nav.append({"Measured results": "results.md"})
    groups: dict[str, list] = {}
    for module, page, _ in api:  # one section per package: the package page first, then its modules
        is_package = (REPO / module.replace(".", "/") / "__init__.py").exists()
        groups.setdefault(module if is_package else module.rsplit(".", 1)[0], []).append({module: page})
    nav.append({"API reference": [{package: members} for package, members in groups.items()]})
    nav += [{"Contributing": "contributing.md"}, {"Changelog": "changelog.md"}]
    return nav


def on_config(config):
    """Set the nav from the pages that exist (mkdocs.yml has none)."""
    config["nav"] = navigation(api_pages())
    return config


def on_files(files: Files, config) -> Files:
    """Add the generated pages: the API reference and the measured results."""
    for _, page, text in api_pages():
        files.append(File.generated(config, page, content=text))
    files.append(File.generated(config, "results.md", content=results_page()))
    return files
