"""Hardware energy profiles: per-operation energies read from ``hardware/*.toml``.

A profile file holds an ``[energy]`` table (this module's; other areas keep their own tables such as
``[constraints]`` and ``[neuron]`` in the same file)::

    [energy]
    name = "cmos45nm"
    unit = "pJ"
    default_precision = "fp32"

    [energy.constants.fp32_add]          # one published figure, with where it comes from
    value = 0.9
    source = "Horowitz, ISSCC 2014, ..."
    confirmed = false                    # true only when checked against the primary source

    [energy.ops.fp32]                    # what one counted operation costs, as a sum of constants
    synop = ["fp32_add"]                 # spike-triggered accumulate (one synaptic operation)
    mac = ["fp32_mult", "fp32_add"]      # multiply-accumulate (layer fed real values; ANN baseline)
    ac = ["fp32_add"]                    # plain accumulate/compare (pooling windows)
    neuron_update = ["fp32_mult", "fp32_add"]
    spike = [...]                        # optional: cost of routing one emitted spike

A constant whose value is not published is simply absent: the cost model then names it when a model
needs it (:class:`~neuromorph.errors.ConfigError`) instead of guessing. Users add a profile by
dropping a file with an ``[energy]`` table into any folder and passing its path as ``hardware``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from neuromorph._compat import tomllib
from neuromorph.errors import ConfigError, DataFormatError

__all__ = ["OPERATIONS", "EnergyConstant", "HardwareProfile", "list_profiles", "load_profile"]

#: the operation kinds the counters produce, in report order
OPERATIONS = ("synop", "mac", "ac", "neuron_update", "spike")
#: operations a profile may leave out without an error (not modelled rather than unknown)
OPTIONAL_OPERATIONS = ("spike",)
_UNITS = {"pJ": 1.0, "fJ": 1e-3, "nJ": 1e3}


@dataclass(frozen=True)
class EnergyConstant:
    """One published per-operation energy in picojoules, with its source and confirmation status."""

    name: str
    value_pj: float
    source: str
    confirmed: bool
    note: str = ""


@dataclass(frozen=True)
class HardwareProfile:
    """Per-operation energies (pJ) of one hardware target at one precision.

    ``ops[kind]`` is the tuple of constant names whose sum is the energy of one operation ``kind``
    (see :data:`OPERATIONS`); an operation absent from ``ops`` is unknown for this target.
    """

    name: str
    precision: str
    path: str
    description: str
    constants: Mapping[str, EnergyConstant]
    ops: Mapping[str, tuple[str, ...]]
    precisions: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        """``name`` or ``name:precision`` when the profile has several precisions."""
        return f"{self.name}:{self.precision}" if len(self.precisions) > 1 else self.name

    def has(self, op: str) -> bool:
        return op in self.ops

    def energy_pj(self, op: str, needed_by: str | None = None) -> float:
        """Energy of one operation ``op`` in pJ; ``ConfigError`` naming the constant when unknown."""
        if op not in self.ops:
            who = f" (needed by {needed_by})" if needed_by else ""
            known = ", ".join(sorted(self.ops)) or "none"
            raise ConfigError(
                f"hardware profile {self.label!r} ({self.path}) has no energy for operation {op!r}{who}; "
                f"it defines: {known}. Add [energy.ops.{self.precision}] {op} = [...] with a sourced constant, "
                f"or choose another profile"
            )
        return float(sum(self.constants[c].value_pj for c in self.ops[op]))

    def sources(self, op: str) -> list[dict[str, Any]]:
        """The constants behind ``op`` with their sources (for reports)."""
        return [
            {"constant": c, "value_pj": self.constants[c].value_pj, "source": self.constants[c].source,
             "confirmed": self.constants[c].confirmed}
            for c in self.ops.get(op, ())
        ]


def _profile_files(extra_dirs: list[Path] | None = None) -> dict[str, Path]:
    from neuromorph.resources import hardware_dir

    files: dict[str, Path] = {}
    for folder in [hardware_dir(), *(extra_dirs or [])]:
        for path in sorted(Path(folder).glob("*.toml")):
            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError):
                continue  # a broken file is reported when it is asked for by name, not while listing
            if isinstance(data.get("energy"), dict):
                files[path.stem] = path
    return files


def list_profiles() -> list[str]:
    """Names of the shipped hardware profiles that carry an ``[energy]`` table."""
    return sorted(_profile_files())


def load_profile(hardware: str | Path | HardwareProfile, precision: str | None = None) -> HardwareProfile:
    """Load an energy profile by name (``"loihi"``, ``"cmos45nm"``, ``"cmos45nm:int8"``) or TOML path.

    ``precision`` (or a ``:precision`` suffix) picks one ``[energy.ops.<precision>]`` table; the
    default is the file's ``default_precision``. Unknown names raise ``ConfigError`` listing the known
    profiles; a malformed file raises ``DataFormatError`` naming the file and field.
    """
    if isinstance(hardware, HardwareProfile):
        return hardware
    text = str(hardware)
    if isinstance(hardware, Path) or text.endswith(".toml") or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"hardware profile file {text!r} does not exist")
    else:
        name, _, suffix = text.partition(":")
        if suffix:
            if precision is not None and precision != suffix:
                raise ConfigError(f"hardware={text!r} conflicts with precision={precision!r}")
            precision = suffix
        files = _profile_files()
        if name not in files:
            raise ConfigError(
                f"unknown hardware profile {name!r}; known profiles: {', '.join(sorted(files)) or 'none'} "
                f"(or pass the path of a .toml file with an [energy] table)"
            )
        path = files[name]
    return _parse(path, precision)


def _parse(path: Path, precision: str | None) -> HardwareProfile:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DataFormatError(f"hardware profile is not valid TOML: {exc}", path=path) from exc
    energy = data.get("energy")
    if not isinstance(energy, dict):
        raise DataFormatError("hardware profile has no [energy] table", path=path)
    unit = energy.get("unit", "pJ")
    if unit not in _UNITS:
        raise DataFormatError(f"[energy] unit={unit!r} is not one of {sorted(_UNITS)}", path=path)
    scale = _UNITS[unit]
    constants: dict[str, EnergyConstant] = {}
    if not isinstance(energy.get("constants") or {}, dict):
        raise DataFormatError("[energy.constants] must be a table of named constants", path=path)
    for cname, entry in (energy.get("constants") or {}).items():
        where = f"[energy.constants.{cname}]"
        if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
            raise DataFormatError(f"{where} needs 'value' and 'source' (a constant without a source is not accepted)", path=path)
        value = entry["value"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise DataFormatError(f"{where} value={value!r} is not a finite non-negative number", path=path)
        if not isinstance(entry.get("confirmed", False), bool):
            raise DataFormatError(f"{where} confirmed must be true or false", path=path)
        constants[cname] = EnergyConstant(
            cname, float(value) * scale, str(entry["source"]), bool(entry.get("confirmed", False)), str(entry.get("note", ""))
        )
    all_ops = energy.get("ops") or {}
    if not isinstance(all_ops, dict):
        raise DataFormatError("[energy.ops] must be a table of precisions", path=path)
    precisions = tuple(all_ops)
    if precision is None:
        precision = energy.get("default_precision", precisions[0] if precisions else "default")
    if precisions and precision not in all_ops:
        raise ConfigError(f"hardware profile {path.stem!r} has no precision {precision!r}; choose one of {', '.join(precisions)}")
    ops: dict[str, tuple[str, ...]] = {}
    if not isinstance(all_ops.get(precision) or {}, dict):
        raise DataFormatError(f"[energy.ops.{precision}] must be a table of operations", path=path)
    for op, parts in (all_ops.get(precision) or {}).items():
        where = f"[energy.ops.{precision}] {op}"
        if op not in OPERATIONS:
            raise DataFormatError(f"{where}: unknown operation; valid: {', '.join(OPERATIONS)}", path=path)
        if isinstance(parts, str):
            parts = [parts]
        if not isinstance(parts, list) or not parts:
            raise DataFormatError(f"{where} must be a non-empty list of constant names", path=path)
        for c in parts:
            if c not in constants:
                raise DataFormatError(f"{where} refers to undefined constant {c!r}", path=path)
        ops[op] = tuple(parts)
    return HardwareProfile(
        name=str(energy.get("name", path.stem)), precision=str(precision), path=str(path),
        description=str(energy.get("description", "")), constants=constants, ops=ops, precisions=precisions,
    )
