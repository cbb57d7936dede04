"""Lazy package namespaces (neuromorph._lazy) keep their exports when a submodule of the same name loads."""

from __future__ import annotations

import subprocess
import sys


def test_importing_a_submodule_keeps_the_export_of_the_same_name() -> None:
    # neuromorph.energy exports the function measure from the submodule neuromorph.energy.measure; importing
    # that submodule first (as `from neuromorph.energy.measure import ...` or a doctest run does) used to
    # rebind nm.energy.measure to the module: "TypeError: 'module' object is not callable".
    code = ("import neuromorph.energy.measure, neuromorph as nm, inspect\n"
            "assert inspect.isfunction(nm.energy.measure), nm.energy.measure\n"
            "from neuromorph.energy import measure\n"
            "assert inspect.isfunction(measure)\n"
            "import neuromorph.data.readers.aedat\n"
            "assert inspect.ismodule(nm.data.readers.aedat)\n")  # other submodules are still modules
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
