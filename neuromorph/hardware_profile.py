"""Hardware profiles: one loader and one type for ``hardware/*.toml``, used by energy, export and quantisation.

A profile file describes one hardware target in up to three tables; every number carries its source::

    [energy]                             # per-operation energies (neuromorph.energy)
    name = "loihi"
    unit = "pJ"                          # or "fJ", "nJ"
    default_precision = "default"

    [energy.constants.synaptic_spike_op] # one published figure, with where it comes from
    value = 23.6
    source = "Davies et al., IEEE Micro 2018, Table 2"
    confirmed = false                    # true only when checked against the primary source

    [energy.ops.default]                 # what one counted operation costs, as a sum of constants
    synop = ["synaptic_spike_op"]        # see OPERATIONS for the operation names

    [constraints.max_delay]              # limits checked by the exporters and used by quantisation
    value = 62
    source = "lava-dl 0.6 netx/hdf5.py"

    [neuron]                             # neuron models the target accepts
    accepts = ["IF", "LIF", "CubaLIF", "LI"]

A value that is not published is simply absent: whoever needs it gets a :class:`HardwareProfileError`
naming the profile, its file and the missing entry, never a guessed number. Users add a target by writing
such a file anywhere and passing its path wherever a profile name is accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from neuromorph._compat import tomllib
from neuromorph.errors import HardwareProfileError

__all__ = [
    "OPERATIONS", "EnergyConstant", "HardwareProfile", "HardwareProfileError", "Limit", "list_profiles",
    "load_profile",
]

#: the operation kinds the energy counters produce, in report order. A profile prices neuron updates
#: either with one ``neuron_update`` energy or with ``neuron_update_active`` and ``neuron_update_inactive``
#: (hardware such as Loihi whose idle neurons cost less; see ``neuromorph.energy.counters``).
OPERATIONS = ("synop", "mac", "ac", "neuron_update", "neuron_update_active", "neuron_update_inactive", "spike")
_UNITS = {"pJ": 1.0, "fJ": 1e-3, "nJ": 1e3}
#: limits whose value is true/false rather than a number
_BOOLEAN_LIMITS = ("graded_spikes",)


@dataclass(frozen=True)
class EnergyConstant:
    """One published per-operation energy in picojoules, with its source and confirmation status."""

    name: str
    value_pj: float
    source: str
    confirmed: bool
    note: str = ""


@dataclass(frozen=True)
class Limit:
    """One hardware limit (``[constraints.<name>]``) with its source and confirmation status."""

    name: str
    value: Any
    source: str
    confirmed: bool = False
    note: str = ""


@dataclass
class HardwareProfile:
    """Everything neuromorph knows about one hardware target, read from one ``hardware/*.toml`` file.

    Energy (``[energy]``, at one ``precision``): ``ops[kind]`` is the tuple of constant names whose sum is
    the energy of one operation ``kind`` (see :data:`OPERATIONS`); an operation absent from ``ops`` is
    unknown for this target. Constraints (``[constraints]``): ``constraints[name]`` is a :class:`Limit`;
    ``limits`` maps names to bare values. ``neuron`` is the ``[neuron]`` table (``accepts``: the neuron
    models the target runs). ``tables`` lists the tables the file has.
    """

    name: str
    path: str
    description: str = ""
    precision: str = "default"
    precisions: tuple[str, ...] = ()
    constants: Mapping[str, EnergyConstant] = field(default_factory=dict)
    ops: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    constraints: Mapping[str, Limit] = field(default_factory=dict)
    neuron: dict[str, Any] = field(default_factory=dict)
    tables: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``name`` or ``name:precision`` when the profile has several precisions."""
        return f"{self.name}:{self.precision}" if len(self.precisions) > 1 else self.name

    def _error(self, problem: str) -> HardwareProfileError:
        return _error(f"hardware profile {self.label!r} ({self.path}): {problem}", self.path, problem)

    # -- energy
    def has(self, op: str) -> bool:
        """Whether one operation ``op`` has a known energy on this target."""
        return op in self.ops

    def energy_pj(self, op: str, needed_by: str | None = None) -> float:
        """Energy of one operation ``op`` in pJ; ``HardwareProfileError`` naming it when unknown."""
        if op not in self.ops:
            who = f" (needed by {needed_by})" if needed_by else ""
            if "energy" not in self.tables:
                raise self._error(f"has no [energy] table, so no energy for operation {op!r}{who}")
            known = ", ".join(sorted(self.ops)) or "none"
            raise self._error(
                f"no energy for operation {op!r}{who}; it defines: {known}. Add [energy.ops.{self.precision}] "
                f"{op} = [...] with a sourced constant, or choose another profile"
            )
        return float(sum(self.constants[c].value_pj for c in self.ops[op]))

    def energy_sources(self, op: str) -> list[dict[str, Any]]:
        """The constants behind ``op`` with their sources (for reports)."""
        return [
            {"constant": c, "value_pj": self.constants[c].value_pj, "source": self.constants[c].source,
             "confirmed": self.constants[c].confirmed}
            for c in self.ops.get(op, ())
        ]

    # -- constraints
    @property
    def limits(self) -> dict[str, Any]:
        """``{name: value}`` of every ``[constraints]`` entry."""
        return {k: c.value for k, c in self.constraints.items()}

    def limit(self, name: str, needed_by: str | None = None) -> Any:
        """The value of ``[constraints.<name>]``; ``HardwareProfileError`` naming it when absent."""
        if name not in self.constraints:
            who = f" (needed by {needed_by})" if needed_by else ""
            if "constraints" not in self.tables:
                raise self._error(f"has no [constraints] table, so no limit {name!r}{who}")
            raise self._error(f"no [constraints.{name}] entry{who}; it defines: {', '.join(sorted(self.constraints))}")
        return self.constraints[name].value


def _error(message: str, file: str | None = None, problem: str = "") -> HardwareProfileError:
    """The one error for profiles; ``file`` and ``field`` (the ``[table.entry]`` at fault, when the
    problem starts with one) are also attributes, for programs and the CLI's JSON error object."""
    field = problem[1:problem.index("]")] if problem.startswith("[") and "]" in problem else None
    return HardwareProfileError(message, file=file, field=field)


def hardware_dir() -> Path:
    """Folder of the shipped profiles: ``neuromorph.hardware`` (the wheel maps the repository's top-level
    ``hardware/`` to it); when Python runs from the repository root the source folder shadows the editable
    install's mapping, so the top-level folder is used directly."""
    from importlib import resources

    try:
        return Path(str(resources.files("neuromorph.hardware")))
    except ModuleNotFoundError:
        path = Path(__file__).resolve().parents[1] / "hardware"
        if path.is_dir():
            return path
        raise


def _profile_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(hardware_dir().glob("*.toml"))}


def list_profiles(table: str | None = None) -> list[str]:
    """Names of the shipped hardware profiles; with ``table`` (``"energy"``, ``"constraints"``) only
    those whose file has that table."""
    names = []
    for name, path in _profile_files().items():
        if table is not None:
            try:
                with open(path, "rb") as fh:
                    if not isinstance(tomllib.load(fh).get(table), dict):
                        continue
            except (OSError, tomllib.TOMLDecodeError):
                continue  # a broken file is reported when it is asked for by name, not while listing
        names.append(name)
    return names


def load_profile(hardware: str | Path | HardwareProfile, precision: str | None = None) -> HardwareProfile:
    """Load a hardware profile by name (``"loihi"``, ``"loihi2"``, ``"cmos45nm"``, ``"cmos45nm:int8"``)
    or by the path of a ``.toml`` file.

    ``precision`` (or a ``:precision`` suffix) picks one ``[energy.ops.<precision>]`` table; the default
    is the file's ``default_precision``. Every problem (unknown name, missing file, malformed table or
    value) raises :class:`HardwareProfileError` naming the profile, the file and the field.

    Example:
        >>> loihi = load_profile("loihi")
        >>> loihi.energy_pj("synop"), loihi.energy_pj("neuron_update_active"), loihi.limit("max_delay")
        (23.6, 81.0, 62)
    """
    if isinstance(hardware, HardwareProfile):
        return hardware
    text = str(hardware)
    if isinstance(hardware, Path) or text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
        if not path.is_file():
            raise _error(f"hardware profile file {text!r} does not exist", text)
    else:
        name, _, suffix = text.partition(":")
        if suffix:
            if precision is not None and precision != suffix:
                raise HardwareProfileError(f"hardware profile {text!r} conflicts with precision={precision!r}")
            precision = suffix
        files = _profile_files()
        if name not in files:
            raise HardwareProfileError(
                f"hardware profile {name!r} is unknown; known profiles: {', '.join(sorted(files)) or 'none'} "
                f"(or pass the path of a .toml file)"
            )
        path = files[name]
    return _parse(path, precision)


def _parse(path: Path, precision: str | None) -> HardwareProfile:
    def bad(problem: str) -> HardwareProfileError:
        return _error(f"hardware profile {path.stem!r} ({path}): {problem}", str(path), problem)

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise bad(f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise bad(f"cannot be read: {exc}") from None
    tables = tuple(t for t in ("energy", "constraints", "neuron") if t in data)
    for t in tables:
        if not isinstance(data[t], dict):
            raise bad(f"[{t}] must be a table")
    if not tables:
        raise bad("has none of the tables [energy], [constraints], [neuron]")
    energy = data.get("energy", {})
    constants, ops, precisions, precision = _parse_energy(energy, precision, bad)
    constraints = _parse_constraints(data.get("constraints", {}), bad)
    name = str(energy.get("name", path.stem))
    return HardwareProfile(
        name=name, path=str(path), description=str(energy.get("description", "")),
        precision=str(precision), precisions=precisions, constants=constants, ops=ops,
        constraints=constraints, neuron=dict(data.get("neuron", {})), tables=tables,
    )


def _parse_energy(energy: dict, precision: str | None, bad) -> tuple[dict, dict, tuple, str]:
    unit = energy.get("unit", "pJ")
    if unit not in _UNITS:
        raise bad(f"[energy] unit={unit!r} is not one of {sorted(_UNITS)}")
    scale = _UNITS[unit]
    if not isinstance(energy.get("constants") or {}, dict):
        raise bad("[energy.constants] must be a table of named constants")
    constants: dict[str, EnergyConstant] = {}
    for cname, entry in (energy.get("constants") or {}).items():
        where = f"[energy.constants.{cname}]"
        if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
            raise bad(f"{where} needs 'value' and 'source' (a constant without a source is not accepted)")
        value = entry["value"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise bad(f"{where} value={value!r} is not a finite non-negative number")
        if not isinstance(entry.get("confirmed", False), bool):
            raise bad(f"{where} confirmed must be true or false")
        constants[cname] = EnergyConstant(cname, float(value) * scale, str(entry["source"]),
                                          bool(entry.get("confirmed", False)), str(entry.get("note", "")))
    all_ops = energy.get("ops") or {}
    if not isinstance(all_ops, dict):
        raise bad("[energy.ops] must be a table of precisions")
    precisions = tuple(all_ops)
    if precision is None:
        precision = energy.get("default_precision", precisions[0] if precisions else "default")
    if precisions and precision not in all_ops:
        raise bad(f"no precision {precision!r}; choose one of {', '.join(precisions)}")
    if not isinstance(all_ops.get(precision) or {}, dict):
        raise bad(f"[energy.ops.{precision}] must be a table of operations")
    ops: dict[str, tuple[str, ...]] = {}
    for op, parts in (all_ops.get(precision) or {}).items():
        where = f"[energy.ops.{precision}] {op}"
        if op not in OPERATIONS:
            raise bad(f"{where}: unknown operation; valid: {', '.join(OPERATIONS)}")
        if isinstance(parts, str):
            parts = [parts]
        if not isinstance(parts, list) or not parts:
            raise bad(f"{where} must be a non-empty list of constant names")
        for c in parts:
            if c not in constants:
                raise bad(f"{where} refers to undefined constant {c!r}")
        ops[op] = tuple(parts)
    split = [op for op in ("neuron_update_active", "neuron_update_inactive") if op in ops]
    if len(split) == 1 or (split and "neuron_update" in ops):
        raise bad(f"[energy.ops.{precision}]: give either neuron_update, or both neuron_update_active and "
                  f"neuron_update_inactive (found {', '.join(op for op in ops if op.startswith('neuron_update'))})")
    return constants, ops, precisions, str(precision)


def _parse_constraints(cons: dict, bad) -> dict[str, Limit]:
    limits: dict[str, Limit] = {}
    for key, entry in cons.items():
        where = f"[constraints.{key}]"
        if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
            raise bad(f"{where} needs 'value' and 'source' (a limit without a source is not accepted)")
        value = entry["value"]
        if key in _BOOLEAN_LIMITS:
            if not isinstance(value, bool):
                raise bad(f"{where} value={value!r} must be true or false")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise bad(f"{where} value={value!r} must be a number >= 0")
        if not isinstance(entry.get("confirmed", False), bool):
            raise bad(f"{where} confirmed must be true or false")
        limits[key] = Limit(key, value, str(entry["source"]), bool(entry.get("confirmed", False)), str(entry.get("note", "")))
    return limits
