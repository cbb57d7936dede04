"""The ``neuromorph`` command line: thin wiring over the package's modules.

Each area registers its own subcommands through a ``register(subparsers)`` function in its ``cli``
module, so this file only lists where they live.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from neuromorph import __version__

# subcommand owner modules, in the order `--help` lists them
_COMMAND_MODULES = (
    "neuromorph.train.cli",  # train, eval, plot
    "neuromorph.energy.cli",  # energy
    "neuromorph.export.cli",  # export
    "neuromorph.data.cli",  # data
    "neuromorph.bench_cli",  # bench
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuromorph", description="Spiking neural networks: train, evaluate, export, measure.")
    parser.add_argument("--version", action="version", version=f"neuromorph {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that area has no commands yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None or not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)
