"""The ``neuromorph`` command line: thin wiring over the package's modules."""

from __future__ import annotations

import argparse
import sys

from neuromorph import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuromorph", description=__doc__)
    parser.add_argument("--version", action="version", version=f"neuromorph {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)
