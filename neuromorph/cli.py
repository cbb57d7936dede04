"""The ``neuromorph`` command line: thin wiring over the package's modules, and its error contract.

Each area keeps its subcommands in its own ``cli`` module (a ``register(subparsers)`` function). This
file lists them with their one-line help, imports only the module of the command being run (so
``--help`` and ``--version`` load no torch), and is the one place that turns errors into output and
exit status for every subcommand:

- exit status ``0`` success, ``1`` the command failed on its input (data, checkpoint, model, hardware
  check, file system), ``2`` the command line or configuration is wrong (``UsageError``,
  ``ConfigError``), ``130`` interrupted;
- on failure, a one-line message ``neuromorph CMD: error: TYPE: MESSAGE`` on stderr and, with
  ``--json``, one JSON object on stdout::

      {"error": {"type": "CheckpointError", "message": "...", "command": "eval", "exit_code": 1,
                 "file": "runs/x/best.pt", "field": null, "layer": null}}

  ``type`` is the ``neuromorph.errors`` class (or the Python one for file-system errors), ``file``,
  ``field``, ``layer`` (and ``offset`` for damaged files) are filled where known; a command may add
  keys beside ``error`` (``export --check`` adds the failed ``check`` table, ``bench`` its per-script results).

Errors of other types are bugs: they propagate with their traceback (exit status 1).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from typing import Any, NoReturn

from neuromorph import __version__
from neuromorph.errors import ConfigError, NeuromorphError, UsageError

EXIT_OK = 0
EXIT_FAILURE = 1  # valid command, failed on its input: data, checkpoint, model, hardware check, files
EXIT_USAGE = 2  # the command line or configuration is wrong: fix the command
EXIT_INTERRUPTED = 130

# command -> (module that registers it, one-line help); the order is the order of `neuromorph --help`.
# tests/test_cli_contract.py checks that each module registers its commands with these help lines.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("neuromorph.train.cli", "train a named recipe"),
    "eval": ("neuromorph.train.cli", "evaluate a checkpoint"),
    "plot": ("neuromorph.train.cli", "plot a run folder or checkpoint"),
    "energy": ("neuromorph.energy.cli", "spikes, synaptic operations and energy per layer of a checkpoint"),
    "export": ("neuromorph.export.cli", "export a checkpoint to NIR or Lava/Loihi netx, with hardware constraint checks"),
    "data": ("neuromorph.data.cli", "inspect event data files"),
    "bench": ("neuromorph.bench_cli", "run the speed, data or accuracy benchmarks"),
}

EPILOG = """\
exit status: 0 success; 1 the command failed on its input (data, checkpoint, model, hardware check,
files); 2 the command line or configuration is wrong; 130 interrupted.
errors: one line 'neuromorph CMD: error: TYPE: MESSAGE' on stderr; with --json also one object on
stdout: {"error": {"type", "message", "command", "exit_code", "file", "field", "layer"}}
(type is the neuromorph.errors class; file/field/layer are null where unknown).
"""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting, so usage errors follow the contract."""

    def error(self, message: str) -> NoReturn:
        # argparse names the argument at fault as "argument --to/-t: ..." or "...required: checkpoint"
        m = re.match(r"argument ([^:\s]+): ", message) or re.match(r"the following arguments are required: ([^,\s]+)", message)
        exc = UsageError(message, field=m.group(1).split("/")[-1] if m else None)
        exc.usage = self.format_usage()  # type: ignore[attr-defined]
        exc.prog = self.prog  # type: ignore[attr-defined]
        raise exc


def exit_code(exc: BaseException) -> int:
    """The exit status for ``exc``: 2 for usage and configuration errors, 130 for Ctrl-C, else 1."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE


def error_object(exc: BaseException, command: str | None) -> dict[str, Any]:
    """The JSON error object of the contract (``{"error": {...}}`` plus any context keys of ``exc``)."""
    file = getattr(exc, "file", None)
    if file is None:
        file = getattr(exc, "filename", None)  # OSError
    if isinstance(exc, OSError) and not isinstance(exc, NeuromorphError) and exc.strerror:
        message = exc.strerror  # the path goes to "file", not into the message twice
    else:
        message = str(exc)
    err: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": message,
        "command": command,
        "exit_code": exit_code(exc),
        "file": None if file is None else str(file),
        "field": getattr(exc, "field", None),
        "layer": getattr(exc, "layer", None),
    }
    if getattr(exc, "offset", None) is not None:
        err["offset"] = exc.offset  # type: ignore[attr-defined]
    return {**(getattr(exc, "context", None) or {}), "error": err}


def report_error(exc: BaseException, command: str | None, as_json: bool) -> int:
    """Print ``exc`` per the contract (stderr line; JSON object on stdout with ``as_json``); return the exit status."""
    obj = error_object(exc, command)
    err = obj["error"]
    if isinstance(exc, UsageError) and not as_json:
        sys.stderr.write(getattr(exc, "usage", ""))
    where = f" ({err['file']})" if err["file"] and err["file"] not in err["message"] else ""
    prog = getattr(exc, "prog", None) or " ".join(filter(None, ("neuromorph", command)))
    print(f"{prog}: error: {err['type']}: {err['message']}{where}".replace("\n", " "), file=sys.stderr)
    if as_json:
        print(json.dumps(obj, default=str))
    return int(err["exit_code"])


def _command_of(argv: list[str]) -> str | None:
    # the top-level options (--help, --version) take no value: the first other word is the command
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> ArgumentParser:
    """The top-level parser. Only the module of the command named in ``argv`` is imported and
    registered in full; the other commands are listed with their help line (``None``: all in full)."""
    parser = ArgumentParser(prog="neuromorph", description="Spiking neural networks: train, evaluate, export, measure.",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"neuromorph {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = set(COMMANDS) if argv is None else {_command_of(argv)}
    for module in dict.fromkeys(m for name, (m, _) in COMMANDS.items() if name in wanted):
        importlib.import_module(module).register(sub)
    for name, (_, help_line) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_line)  # listed only, never parsed: its module is not loaded
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``neuromorph`` command line; returns the exit status (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in argv
    command = _command_of(argv) if _command_of(argv) in COMMANDS else None
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        command = args.command
        return int(args.func(args) or 0)
    except (NeuromorphError, OSError, ImportError, KeyboardInterrupt) as exc:
        # ImportError: an optional extra that is not installed (matplotlib for plots, triton, lava)
        return report_error(exc, command, as_json)
