"""Exception types of neuromorph.

Every error the package raises on bad input is one of these, so callers can catch
``NeuromorphError`` and still get the standard Python category (``ValueError``, ``OSError``) they
expect. Messages name the file, field, parameter or layer at fault.
"""

from __future__ import annotations


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
    """A damaged or foreign data file: names the file and, where known, the byte offset."""

    def __init__(self, message: str, path: object | None = None, offset: int | None = None):
        where = []
        if path is not None:
            where.append(f"file {str(path)!r}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message, file=path)
        self.path = path
        self.offset = offset


class DatasetError(NeuromorphError, OSError):
    """A data set that is missing, incomplete or fails verification."""


class ExportError(NeuromorphError, ValueError):
    """A model that cannot be exported or mapped to the requested target."""


class HardwareConstraintError(ExportError):
    """A model that violates a hardware profile's constraints."""


class CheckpointError(NeuromorphError, ValueError):
    """A corrupt or incompatible checkpoint."""


def check_choice(name: str, value: object, valid) -> None:
    """Raise ``ConfigError`` naming ``name`` and listing ``valid`` unless ``value`` is one of them."""
    valid = list(valid)
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, valid))}", field=name)
