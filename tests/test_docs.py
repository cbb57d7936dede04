"""The documentation's code runs: the ```python blocks of the pages and the docstring examples.

A page's blocks run in order in one namespace (a later block may use what an earlier one defined), in a
temporary working folder. A block that cannot run in the tests (it downloads, trains for minutes, needs a
GPU) is preceded by the line ``<!-- docs-test: skip REASON -->``; a skip without a reason is an error. A
block (of any language) preceded by ``<!-- docs-test: file NAME -->`` is a file the page tells you to
write (a module, a hardware profile): it is written to that file in the working folder, where the blocks
after it can import or load it, not run.
Docstring examples (``>>>``) run with doctest in every module of neuromorph that has them.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(p for p in [*DOCS.rglob("*.md"), REPO / "README.md"] if "tutorials" not in p.parts)

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.M | re.S)
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(?P<kind>skip|file)\b(?P<arg>[^>]*?)-->\s*$")


def python_blocks(text: str) -> list[tuple[int, str, tuple[str, str] | None]]:
    """(line, code, directive) for each ```python block (and each block marked as a file) of a Markdown
    text; the directive is None or
    ``("skip", reason)`` / ``("file", name)`` from the comment line just above the block."""
    blocks = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        directive = DIRECTIVE.search(before)
        # python blocks run; a block of any language can be a file the page tells you to write
        if m.group("lang") not in ("python", "py") and not (directive and directive.group("kind") == "file"):
            continue
        indent = m.group("indent")
        code = "".join(l[len(indent):] if l.startswith(indent) else l
                       for l in m.group("body").splitlines(keepends=True))
        blocks.append((line, code, (directive.group("kind"), directive.group("arg").strip())
                       if directive else None))
    return blocks


def test_block_parser() -> None:
    text = ("x\n```python\na = 1\n```\n<!-- docs-test: skip downloads N-MNIST -->\n```python\nb = 2\n```\n"
            "```bash\nls\n```\n1. item\n\n   ```python\n   c = 3\n   ```\n"
            "<!-- docs-test: file chip.toml -->\n```toml\n[energy]\n```\n")
    assert python_blocks(text) == [(2, "a = 1\n", None), (6, "b = 2\n", ("skip", "downloads N-MNIST")),
                                   (14, "c = 3\n", None), (18, "[energy]\n", ("file", "chip.toml"))]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_page_snippets_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip("no python blocks")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    for line, code, directive in blocks:
        where = f"{page.relative_to(REPO)}:{line}"
        if directive is not None:
            kind, arg = directive
            assert arg, f"{where}: 'docs-test: {kind}' needs a {'reason' if kind == 'skip' else 'file name'}"
            if kind == "file":
                (tmp_path / arg).write_text(code, encoding="utf-8")
            continue
        try:
            exec(compile(code, where, "exec"), namespace)
        except Exception as exc:  # name the page and line of the failing block
            raise AssertionError(f"{where}: the python block fails: {exc!r}") from exc


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted((REPO / "neuromorph").rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


EXAMPLE_MODULES = _modules_with_examples()


def test_docstrings_have_examples() -> None:
    # the doctest below must have something to run
    assert len(EXAMPLE_MODULES) >= 3, EXAMPLE_MODULES


@pytest.mark.parametrize("module", EXAMPLE_MODULES)
def test_docstring_examples_run(module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(mod, module) if t.examples]
    assert tests, f"{module} has '>>> ' in its source but no docstring example was found"
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {module} failed (output above)"


def _doc_hooks():
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("doc_hooks", REPO / "scripts" / "doc_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nav_pages(nav) -> list[str]:
    pages = []
    for entry in nav:
        for value in (entry.values() if isinstance(entry, dict) else [entry]):
            pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_site_navigation_lists_the_pages_that_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = _doc_hooks()
    pages = _nav_pages(hooks.navigation(hooks.api_pages()))
    # every hand-written page is reachable, and every public module has an API page
    written = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "tutorials" not in p.parts}
    assert written <= set(pages), written - set(pages)
    assert {"reference/neuromorph/nn/neurons.md", "reference/neuromorph/energy/measure.md",
            "reference/neuromorph/hardware_profile.md"} <= set(pages)
    assert not any("/_" in p for p in pages if p.startswith("reference/"))  # private modules stay out
    # tutorials and method pages appear when their files exist, in order, and are simply absent otherwise
    docs = tmp_path / "docs"
    (docs / "methods").mkdir(parents=True)
    (docs / "tutorials").mkdir()
    monkeypatch.setattr(hooks, "DOCS", docs)
    assert not any("tutorials/" in p or "methods/" in p for p in _nav_pages(hooks.navigation([])))
    (docs / "tutorials" / "02_b.ipynb").write_text('{"cells": [{"cell_type": "markdown", "source": ["# Two"]}]}')
    (docs / "tutorials" / "01_a.ipynb").write_text('{"cells": []}')
    (docs / "tutorials" / "01_a.py").write_text("# %% the jupytext source is not a page")
    (docs / "methods" / "zeta.md").write_text("# Zeta\n")
    (docs / "methods" / "mpbn.md").write_text("# MPBN\n")
    nav = hooks.navigation([])
    tutorials = next(e["Tutorials"] for e in nav if "Tutorials" in e)
    assert tutorials == [{"A": "tutorials/01_a.ipynb"}, {"Two": "tutorials/02_b.ipynb"}]
    methods = next(e["Methods"] for e in nav if "Methods" in e)
    assert methods == [{"MPBN": "methods/mpbn.md"}, {"Zeta": "methods/zeta.md"}]


def test_api_reference_reads_rst_habits_as_markdown() -> None:
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("griffe_rst", REPO / "scripts" / "griffe_rst.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = ("See :class:`~neuromorph.nn.LIF` and :func:`neuromorph.energy.measure`.\nChoices:\n- one\n- two\n\n"
            "Per step::\n\n    a = b\n    - not a list\n\n====  ===\nname  x\n====  ===\natan  2\n====  ===\n\nEnd.")
    assert module.markdown(text) == (
        "See `LIF` and `neuromorph.energy.measure`.\nChoices:\n\n- one\n- two\n\n"
        "Per step:\n\n    a = b\n    - not a list\n\n    ====  ===\n    name  x\n    ====  ===\n    atan  2\n"
        "    ====  ===\n\nEnd.")
