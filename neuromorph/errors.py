"""Exception types of neuromorph.

Every error the package raises on bad input is one of these, so callers can catch
``NeuromorphError`` and still get the standard Python category (``ValueError``, ``OSError``) they
expect. Messages name the file, field, parameter or layer at fault.
"""

from __future__ import annotations


class NeuromorphError(Exception):
    """Base class of all neuromorph errors."""


class ConfigError(NeuromorphError, ValueError):
    """An invalid parameter value: names the parameter and lists the valid values."""


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
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.path = path
        self.offset = offset


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
        raise ConfigError(f"{name}={value!r} is not valid; choose one of {', '.join(map(repr, valid))}")
