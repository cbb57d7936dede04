"""Exception types of neuromorph.

Every error the package raises on bad input is one of these, so callers can catch
``NeuromorphError`` and still get the standard Python category (``ValueError``, ``OSError``) they
expect. Messages name the file, field, parameter or layer at fault.
"""

from __future__ import annotations

from typing import Callable


class NeuromorphError(Exception):
    """Base class of all neuromorph errors.

    The message names the file, field or layer for people. Programs get them as attributes, given as
    optional keywords (``file``, ``field``, ``layer``; ``None`` when not known); the CLI copies them into
    its JSON error object. ``context`` holds further JSON-able facts a command reports beside the
    error (e.g. the failed constraint table of ``neuromorph export --check``).
    """

    def __init__(self, *args: object, file: object | None = None, field: str | None = None,
                 layer: str | None = None) -> None:
        super().__init__(*args)
        self.file = file
        self.field = field
        self.layer = layer
        self.context: dict = {}


class ConfigError(NeuromorphError, ValueError):
    """An invalid parameter value: names the parameter and lists the valid values."""


class UsageError(ConfigError):
    """A command line the ``neuromorph`` CLI cannot parse (unknown option, missing or invalid argument)."""


class ShapeError(NeuromorphError, ValueError):
    """A tensor of the wrong shape or dtype: names the argument and the expected layout."""


class NonFiniteError(NeuromorphError, ValueError):
    """NaN or Inf met where finite values are required (see ``check_finite`` options)."""


class DataFormatError(NeuromorphError, ValueError):
    """A damaged or foreign data file: names the file and, where known, the byte offset.

    ``options``: reader options that would likely read the file (``{"address_bytes": 2}``; a tuple lists
    alternatives). They stay out of ``message`` so each front end names them its own way: ``str(exc)``
    says "pass address_bytes=2" (Python keywords), :meth:`respell` rewrites the message with a front
    end's own names (the CLI: "pass --address-bytes 2").
    """

    def __init__(self, message: str, path: object | None = None, offset: int | None = None,
                 options: dict | None = None):
        where = []
        if path is not None:
            where.append(f"file {str(path)!r}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message, file=path)
        self.path = path
        self.offset = offset
        self.message = message
        self.options = dict(options or {})
        if self.options:
            self.args = (self.describe(),)

    def describe(self, flag: Callable[[str], str] | None = None) -> str:
        """The message with its advice: options as Python keywords, or named by ``flag(option)`` (a CLI flag)."""
        where = [f"file {str(self.path)!r}"] if self.path is not None else []
        where += [f"byte offset {self.offset}"] if self.offset is not None else []
        text = f"{self.message} ({', '.join(where)})" if where else self.message
        if not self.options:
            return text

        def value(v, spell):
            return " or ".join(map(spell, v)) if isinstance(v, (tuple, list)) else spell(v)

        if flag is None:
            pairs = [f"{k}={value(v, repr)}" for k, v in self.options.items()]
            advice = f"read(path, {', '.join(pairs)})" if "format" in self.options else ", ".join(pairs)
            return f"{text}; {'use' if 'format' in self.options else 'pass'} {advice}"
        return f"{text}; pass {' '.join(f'{flag(k)} {value(v, str)}' for k, v in self.options.items())}"

    def respell(self, flag: Callable[[str], str]) -> DataFormatError:
        """Name the advised options by ``flag(option)`` in ``str(self)`` (a front end's own names); returns self."""
        if self.options:
            self.args = (self.describe(flag),)
        return self


class DatasetError(NeuromorphError, OSError):
    """A data set that is missing, incomplete or fails verification."""


class ExportError(NeuromorphError, ValueError):
    """A model that cannot be exported or mapped to the requested target."""


class HardwareConstraintError(ExportError):
    """A model that violates a hardware profile's constraints."""


class HardwareProfileError(ConfigError):
    """A hardware profile (``hardware/*.toml`` or a user's file) that is unknown, unreadable, malformed or
    lacks a value that is needed: names the profile, its file and the entry."""


class CheckpointError(NeuromorphError, ValueError):
    """A corrupt or incompatible checkpoint."""


def check_choice(name: str, value: object, valid) -> None:
    """Raise ``ConfigError`` naming ``name`` and listing ``valid`` unless ``value`` is one of them."""
    valid = list(valid)
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, valid))}", field=name)


class UnknownLayerError(ConfigError, ExportError):
    """A layer that declares no role in the layer protocol (:mod:`neuromorph.nn.protocol`).

    Export, the energy monitor and the training metrics raise this same error (built by one function),
    so it is both a ``ConfigError`` and an ``ExportError``.
    """
