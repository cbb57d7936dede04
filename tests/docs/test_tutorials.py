"""The tutorials cannot rot: each source runs in its reduced mode, and each committed notebook holds the
source's code, executed.

The sources are the jupytext percent scripts ``docs/tutorials/NN_name.py``; ``docs/tutorials/build.py`` runs
them in full mode and writes the ``NN_name.ipynb`` the site shows. Here every source runs as a user would run
it (``python NN_name.py`` in a subprocess, no network) with ``NEUROMORPH_TUTORIAL_QUICK=1`` (tiny data, one
epoch), once on the real recordings and, for the tutorials that fall back to the embedded or generated data
when ``NEUROMORPH_DATA`` is unset, once without it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TUTORIALS = REPO / "docs" / "tutorials"
SOURCES = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
# tutorials that read NEUROMORPH_DATA and have a fallback without it
FALLBACK = ["02_nmnist_to_loihi.py", "03_shd_delays.py", "05_event_data.py", "06_adaptive_sparse.py"]


def _run(source: Path, tmp_path: Path, data: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NEUROMORPH_DATA"}
    env.update(NEUROMORPH_TUTORIAL_QUICK="1", NEUROMORPH_TUTORIAL_OUT=str(tmp_path), MPLBACKEND="Agg",
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""))
    if data is not None:
        env["NEUROMORPH_DATA"] = str(data)
    return subprocess.run([sys.executable, str(source)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)


def test_every_tutorial_is_found():
    assert [p.name[:2] for p in SOURCES] == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_tutorial_runs_in_quick_mode(source: Path, tmp_path: Path, shared_data: Path):
    proc = _run(source, tmp_path, shared_data)
    assert proc.returncode == 0, f"{source.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    # the tutorials print their equivalence claims ("same spikes as neuromorph: True"); none may turn False
    claims = [line for line in proc.stdout.splitlines() if re.search(r"\b(same|equals?|identical)\b", line)]
    assert not [c for c in claims if "False" in c], f"{source.name}: a claim failed: {claims}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", FALLBACK)
def test_tutorial_runs_without_data(name: str, tmp_path: Path):
    proc = _run(TUTORIALS / name, tmp_path, None)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "NEUROMORPH_DATA is not set" in proc.stdout


def _code_cells(cells) -> list[str]:
    return [c["source"].strip() for c in cells if c["cell_type"] == "code"]


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_matches_its_source_and_is_executed(source: Path):
    jupytext = pytest.importorskip("jupytext", reason="jupytext (the docs extra) reads the percent scripts")
    notebook = source.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.name} missing: run python docs/tutorials/build.py {source.name}"
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cells = [{**c, "source": "".join(c["source"])} for c in nb["cells"]]
    assert _code_cells(cells) == _code_cells(jupytext.read(source).cells), (
        f"{notebook.name} differs from {source.name}: rebuild it with python docs/tutorials/build.py {source.name}")
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), f"{notebook.name} has cells that were not executed"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{notebook.name} shows an error: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    assert nb["metadata"]["neuromorph"]["full_mode_wall_s"] > 0
    text = "".join("".join(o.get("text", "")) for c in code for o in c.get("outputs", []) if o.get("output_type") == "stream")
    claims = [line for line in text.splitlines() if re.search(r"\b(same|equals?|identical)\b", line)]
    assert not [c for c in claims if "False" in c], f"{notebook.name} shows a failed claim: {claims}"


def test_build_script_help_needs_no_docs_extra():
    """The build script's --help works without the docs extra being imported (it imports jupytext lazily)."""
    proc = subprocess.run([sys.executable, str(TUTORIALS / "build.py"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "NEUROMORPH_DATA" in proc.stdout
