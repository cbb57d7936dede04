"""Command-line options of every command that loads a checkpoint (eval, energy, export, plot).

Kept free of heavy imports (no torch) because the CLI builds its parser before it knows the command.
"""

from __future__ import annotations

from typing import Any

TRUST_HELP = ("allow importing the model builder the checkpoint names when it is outside neuromorph (a model saved "
              "with neuromorph.save_model from your own module); importing runs that module's code")


def add_loader_arguments(parser: Any, recipe: bool = True) -> None:
    """Add ``--trust-builder``, ``--python-path DIR`` and (``recipe``) ``--recipe NAME`` to ``parser``."""
    parser.add_argument("--trust-builder", action="store_true", help=TRUST_HELP)
    parser.add_argument("--python-path", action="append", default=[], metavar="DIR",
                        help="folder to put on the Python path to find the builder's module (repeatable)")
    if recipe:
        parser.add_argument("--recipe", default=None,
                            help="recipe whose data set, binning and readout to use (nmnist, shd, ...) when the "
                            "checkpoint records none (a model saved without recipe=)")


def loader_options(args: Any) -> dict[str, Any]:
    """``neuromorph.train.checkpoint.load_model`` keyword arguments from the options added above."""
    return {"trust_builder": bool(getattr(args, "trust_builder", False)),
            "python_path": list(getattr(args, "python_path", None) or [])}
