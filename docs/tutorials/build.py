"""Execute the tutorials in full mode and write their notebooks (``NN_name.ipynb``) beside the sources.

The sources are jupytext percent scripts (``NN_name.py``); the notebooks the site shows are built from them
by this script and committed, so the site renders real outputs without re-executing anything.
``tests/docs/test_tutorials.py`` checks that every notebook's code cells equal its source, runs every
source in its reduced mode (``NEUROMORPH_TUTORIAL_QUICK=1``), and so keeps both from rotting.

    python docs/tutorials/build.py [--data DIR] [--threads 1] [NN_name.py ...]
    python docs/tutorials/build.py --refresh-text [NN_name.py ...]   # text edits only: no re-execution

``--data`` sets ``NEUROMORPH_DATA`` (the folder holding ``nmnist/`` and ``shd/``; see the tutorials); without
it the tutorials fall back to the embedded ``digits-dvs`` set and generated data. Runs niced, one kernel at a
time, with ``--threads`` threads; prints each tutorial's wall and CPU seconds. Needs jupytext, nbclient and
ipykernel (the ``docs`` extra).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sources(names: list[str]) -> list[Path]:
    """The tutorial sources to build: those named, else every ``NN_name.py`` here."""
    if names:
        return [HERE / Path(n).name for n in names]
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def build(source: Path, timeout: int) -> tuple[float, float]:
    """Execute ``source`` in a fresh kernel (cwd: a temporary folder) and write ``source.with_suffix('.ipynb')``
    atomically. Returns (wall seconds, CPU seconds of the kernel)."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    nb = jupytext.read(source)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory(prefix=f"nm-{source.stem}-") as work:
        os.environ["NEUROMORPH_TUTORIAL_OUT"] = work
        cpu0, t0 = _cpu_children(), time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": work}}).execute()
        wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
    for cell in nb.cells:  # volatile fields would make every rebuild a diff
        cell.metadata.pop("execution", None)
    nb.metadata["neuromorph"] = {"full_mode_wall_s": round(wall, 1), "full_mode_cpu_s": round(cpu, 1)}
    out = source.with_suffix(".ipynb")
    tmp = out.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, out)
    return wall, cpu


def refresh_text(source: Path) -> None:
    """Copy the markdown cells of ``source`` into its built notebook, keeping the outputs: for edits of the
    text only. Refuses (ValueError) when the code cells differ, which needs a rebuild."""
    import jupytext
    import nbformat

    out = source.with_suffix(".ipynb")
    new, old = jupytext.read(source), nbformat.read(out, as_version=4)
    kinds = [(c.cell_type, c.source.strip() if c.cell_type == "code" else None) for c in new.cells]
    if kinds != [(c.cell_type, c.source.strip() if c.cell_type == "code" else None) for c in old.cells]:
        raise ValueError(f"{source.name}: its code or cell layout changed since {out.name} was built; rebuild it")
    for mine, built in zip(new.cells, old.cells):
        if mine.cell_type == "markdown":
            built.source = mine.source
    tmp = out.with_suffix(".ipynb.tmp")
    nbformat.write(old, tmp)
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="tutorial sources to build (default: all)")
    ap.add_argument("--data", type=Path, help="folder for NEUROMORPH_DATA (holds nmnist/, shd/)")
    ap.add_argument("--threads", type=int, default=1, help="torch/numba/BLAS threads of each kernel")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run")
    ap.add_argument("--refresh-text", action="store_true", help="copy edited markdown into the built notebooks, no execution")
    args = ap.parse_args(argv)
    if args.refresh_text:
        for src in sources(args.names):
            refresh_text(src)
            print(f"{src.name}: text refreshed", flush=True)
        return 0
    os.environ.pop("NEUROMORPH_TUTORIAL_QUICK", None)
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend puts the figures into the notebook
    if args.data is not None:
        os.environ["NEUROMORPH_DATA"] = str(args.data.resolve())
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.nice(10)
    for src in sources(args.names):
        wall, cpu = build(src, args.timeout)
        print(f"{src.name}: {wall:.0f} s wall, {cpu:.0f} s CPU -> {src.with_suffix('.ipynb').name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
