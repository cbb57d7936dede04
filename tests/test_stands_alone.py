"""The shipped project stands alone: no pointer to the developers' private spec files or data folder.

Users get neuromorph/, hardware/, docs/, examples/ and README.md; they do not get the developers' specs
(METHODS*.md, ARCHITECTURE.md, ENVIRONMENT.md, PROVENANCE.md, STYLE.md) nor ../shared. A docstring, error
message or doc page must cite the original source (paper, venue, official code) instead, and the method page
of the documentation (docs/methods/*.md) where the equations and defaults are written out; every such
citation must name a page that exists. No line is exempt.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ["neuromorph", "hardware", "docs", "examples", "README.md"]
TEXT_SUFFIXES = {".py", ".md", ".rst", ".txt", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".sh", ".cu",
                 ".c", ".h", ".cpp", ".pyi"}

POINTER = re.compile(
    r"\bMETHODS(?:-[\w-]+)?\.md\b"           # METHODS.md, METHODS-se-adlif.md, METHODS-sparse.md
    r"|\bMETHODS\s*§"                        # "METHODS §3(b)"
    r"|\b(?:ARCHITECTURE|ENVIRONMENT|PROVENANCE|STYLE)(?:\.md)?\b"  # the other spec files (upper case)
    r"|\.\./shared\b"                        # the developers' shared folder
    r"|[\"']shared[\"']\s*/\s*[\"']data[\"']"  # ... built as a path: parent / "shared" / "data"
)


def _shipped_files() -> list[Path]:
    files = []
    for name in SHIPPED:
        root = REPO / name
        if root.is_file():
            files.append(root)
            continue
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts \
                    and not any(part.endswith(".egg-info") for part in p.parts):
                files.append(p)
    return files


def find_pointers(path: Path, text: str) -> list[str]:
    """``path:line: text`` for every line of ``text`` that points to a private spec file or ../shared."""
    return [f"{path.relative_to(REPO)}:{i}: {line.strip()}"
            for i, line in enumerate(text.splitlines(), 1)
            if POINTER.search(line)]


@pytest.mark.parametrize("line", [
    "The equations below are those of METHODS.md §3(b).",
    "see METHODS-se-adlif.md for the update order",
    "readout (METHODS §3(b), Hammouamri et al.)",
    "# Why these steps (see ENVIRONMENT notes): lava-nc 0.10",
    "as ARCHITECTURE.md says",
    "python examples/train_nmnist.py --data-root ../shared/data/nmnist",
    'default=Path(__file__).resolve().parents[2] / "shared" / "data"',
])
def test_scanner_catches_pointers(line: str) -> None:
    assert find_pointers(REPO / "neuromorph" / "x.py", line)


@pytest.mark.parametrize("line", [
    'METHODS = ("auto", "spectral", "direct", "shift")',  # a constant, not a file
    "Hammouamri, Khalfaoui-Hassani & Masquelier, ICLR 2024 (code: Thvnvtos/SNN-delays@d169b4e)",
    "the environment variable NEUROMORPH_HOME",
    "shared memory between workers",
    "Method page: ``docs/methods/mpbn.md`` (equations, defaults, what neuromorph does differently).",
])
def test_scanner_leaves_citations_alone(line: str) -> None:
    assert not find_pointers(REPO / "neuromorph" / "x.py", line)


def test_readme_is_scanned_like_every_shipped_file() -> None:
    readme = REPO / "README.md"
    assert find_pointers(readme, "Tests look in `../shared/data` (override with `NEUROMORPH_TEST_DATA`).")
    assert find_pointers(readme, "See METHODS.md §3 for the recipe.")
    assert find_pointers(REPO / "docs" / "x.md", "data in ../shared/data (override with NEUROMORPH_TEST_DATA)")


def test_shipped_files_do_not_point_to_private_specs() -> None:
    files = _shipped_files()
    assert any(p.suffix == ".py" for p in files) and any(p.suffix == ".md" for p in files)
    hits = [h for p in files for h in find_pointers(p, p.read_text(encoding="utf-8", errors="replace"))]
    assert not hits, ("pointers to the developers' private specs or ../shared in shipped files; cite the "
                      "paper / official code and state the equation or default instead:\n" + "\n".join(hits))


DOCS_CITATION = re.compile(r"\bdocs/[\w./-]+\.(?:md|ipynb)\b")


def test_docs_citations_resolve() -> None:
    # Docstrings, errors and pages cite the documentation pages (docs/methods/mpbn.md, docs/layout.md)
    # where they used to cite the private specs; every such citation names a page that exists.
    files = _shipped_files()
    cited = {(p, m.group(0)) for p in files for m in DOCS_CITATION.finditer(p.read_text(encoding="utf-8",
                                                                                         errors="replace"))}
    assert any(c.startswith("docs/methods/") for _, c in cited), "no docstring cites a method page"
    missing = sorted(f"{p.relative_to(REPO)}: {c}" for p, c in cited if not (REPO / c).is_file())
    assert not missing, "citations of documentation pages that do not exist:\n" + "\n".join(missing)
