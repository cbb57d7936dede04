"""Checkpoints: atomic save, code-free load, and rebuilding a model from what a checkpoint records.

Format (a plain ``dict`` written with ``torch.save``; every value is a tensor, a number, a string, a list
or a dict, so that ``torch.load(weights_only=True)`` can read it without unpickling any code)::

    {
      "format": "neuromorph.checkpoint", "version": 1, "neuromorph_version": "0.1.0",
      "model": {"builder": "neuromorph.models.nmnist:NMNISTConvSNN", "kwargs": {...},
                "python_path": "/dir" | absent},   # where an external builder's module was found (a hint)
      "state_dict": {...},            # model.state_dict() (unwrapped from DDP)
      "info": {...},                  # recipe (as a dict), data set, metrics, epoch: free-form plain data
      "train_state": {...} | absent,  # optimisers, schedules, RNG states, epoch/step: what --resume needs
    }

The model is rebuilt by calling ``builder(**kwargs)``. The builder is named (``"module:function"``), not
pickled. Builders inside the ``neuromorph`` package, and those registered in-process with
:func:`register_builder`, are used directly. Any other builder (the user's own model code) is imported
only when the caller trusts it explicitly (``trust_builder=`` here, ``--trust-builder`` on the command
line, or the ``NEUROMORPH_TRUST_BUILDERS`` environment variable), because importing a module runs its
code: a checkpoint from an untrusted source cannot make the loader run foreign code.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
import sys
import types
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from neuromorph._atomic import atomic_path
from neuromorph.errors import CheckpointError

FORMAT = "neuromorph.checkpoint"
VERSION = 1

_BUILDERS: dict[str, Callable[..., torch.nn.Module]] = {}

# Environment variable naming trusted builder modules for processes that cannot take a flag (scripts,
# CI, ``neuromorph train --config`` with a user model): comma-separated module names (a name also trusts
# its submodules) or ``module:function`` builders; ``*`` trusts every builder.
TRUST_ENV = "NEUROMORPH_TRUST_BUILDERS"

# what a trust argument may be: False (only neuromorph/registered), True (whatever the checkpoint names),
# or module names / "module:function" builders
Trust = bool | str | Iterable[str]


def register_builder(name: str, builder: Callable[..., torch.nn.Module]) -> None:
    """Allow ``name`` (any string) as a model builder in checkpoints of this process.

    For models used in one process only (tests, notebooks). Across processes, name an importable
    ``"module:function"`` instead and trust it when loading (see :func:`resolve_builder`).
    """
    _BUILDERS[name] = builder


def builder_name(builder: Callable[..., Any]) -> str:
    """The ``"module:qualname"`` a checkpoint stores for ``builder`` (or its registered name)."""
    for name, fn in _BUILDERS.items():
        if fn is builder:
            return name
    return f"{builder.__module__}:{builder.__qualname__}"


def _is_internal(module_name: str) -> bool:
    return module_name == "neuromorph" or module_name.startswith("neuromorph.")


def _split_name(name: str) -> tuple[str, str]:
    module_name, _, qualname = name.partition(":")
    if not module_name or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise CheckpointError(
            f"model builder {name!r} is not an importable 'package.module:function' name (a function or class "
            f"defined at the top level of a module)"
        )
    return module_name, qualname


def _trusted(name: str, trust: Trust) -> bool:
    """Whether the caller (argument or environment) allows importing the external builder ``name``."""
    if trust is True:
        return True
    entries: list[str] = []
    if isinstance(trust, str):
        entries.append(trust)
    elif trust is not False and trust is not None:
        entries.extend(trust)
    entries.extend(e.strip() for e in os.environ.get(TRUST_ENV, "").split(",") if e.strip())
    module_name = name.partition(":")[0]
    for entry in entries:
        if entry == "*" or entry == name or entry == module_name or module_name.startswith(entry + "."):
            return True
    return False


def _untrusted_message(name: str, where: str, hint: str | None) -> str:
    module_name = name.partition(":")[0]
    path_flag = f" --python-path {hint}" if hint else ""
    return (
        f"{where}names the model builder {name!r}, which is outside the neuromorph package; importing it runs the "
        f"code of module {module_name!r}, so it is only done when you trust it: pass --trust-builder{path_flag} "
        f"on the command line (--python-path DIR: the folder holding {module_name.split('.')[0]!r}, if it is not "
        f"on PYTHONPATH), or trust_builder=True / {TRUST_ENV}={module_name} in Python"
    )


def resolve_builder(
    name: str,
    trust: Trust = False,
    python_path: Iterable[str | os.PathLike] = (),
    where: str = "",
    hint: str | None = None,
) -> Callable[..., torch.nn.Module]:
    """Find the callable a checkpoint names.

    Registered names and builders inside ``neuromorph`` are always found. Any other ``"module:function"``
    is imported only when trusted: ``trust=True`` (whatever the checkpoint names), module names or
    ``"module:function"`` builders listed in ``trust`` or in ``$NEUROMORPH_TRUST_BUILDERS``; otherwise a
    ``CheckpointError`` says which flag allows it. ``python_path`` folders are put first on ``sys.path``
    before the import (they stay there, so the module's own later imports work). ``where`` prefixes
    the messages (e.g. the checkpoint path); ``hint`` is the folder the builder was saved from.
    """
    if name in _BUILDERS:
        return _BUILDERS[name]
    module_name, qualname = _split_name(name)
    if not _is_internal(module_name) and not _trusted(name, trust):
        raise CheckpointError(_untrusted_message(name, where, hint))
    for folder in reversed([str(Path(p).resolve()) for p in python_path]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
            if isinstance(obj, types.ModuleType):  # the module is named before the colon, never reached through it
                raise CheckpointError(f"{where}model builder {name!r} reaches module {obj.__name__!r} through an attribute; "
                                      f"name it as '{obj.__name__}:...' instead")
    except (ImportError, AttributeError) as exc:
        if _is_internal(module_name):
            raise CheckpointError(f"{where}model builder {name!r} not found in this neuromorph version: {exc}") from exc
        folder = f" (it was saved from {hint!r})" if hint else ""
        raise CheckpointError(
            f"{where}model builder {name!r} cannot be imported: {exc}; put the folder holding module "
            f"{module_name.split('.')[0]!r} on the path with --python-path DIR or PYTHONPATH{folder}"
        ) from exc
    if not callable(obj):
        raise CheckpointError(f"{where}model builder {name!r} is not callable")
    # a name inside neuromorph must be defined there: "neuromorph.x:os.system" reaches a foreign function
    # through a module attribute, which the package trust must not extend to
    defined_in = getattr(obj, "__module__", None) or ""
    if _is_internal(module_name) and not _is_internal(defined_in):
        raise CheckpointError(f"{where}model builder {name!r} is not defined in neuromorph (it is {defined_in or 'a builtin'}"
                              f"{'.' if defined_in else ''}{getattr(obj, '__qualname__', '')}); refused")
    return obj


def _check_saveable(name: str, builder: Callable[..., Any] | None) -> str | None:
    """Refuse at save time a builder that no other process could find; returns the folder its module was
    found in (stored as a hint for the loader's messages), if external."""
    if name in _BUILDERS:
        return None
    module_name, qualname = _split_name(name)
    if module_name == "__main__":
        raise CheckpointError(
            f"model builder {name!r} is defined in the script being run (__main__), which another process cannot "
            f"import without running the script again: move it into a module (e.g. mymodel.py) and import it from there"
        )
    if _is_internal(module_name):
        resolve_builder(name)
        return None
    # the saving process is the user's own: importing their module here runs nothing they did not ask for
    obj = resolve_builder(name, trust=True)
    if builder is not None and obj is not builder:
        raise CheckpointError(f"model builder {name!r} does not name the function given (a redefinition?)")
    module = sys.modules[module_name]
    file = getattr(module, "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    depth = module_name.count(".") + (1 if Path(file).name == "__init__.py" else 0)
    for _ in range(depth):
        root = root.parent
    return str(root)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the target folder, fsync, then ``os.replace``.

    A crash or Ctrl-C during the write leaves the previous file intact: readers see either the old or
    the new checkpoint, never a truncated one (``os.replace`` is atomic on POSIX and Windows).
    """
    path = Path(path)
    with atomic_path(path, fsync=True) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
    return path


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside a DistributedDataParallel / DataParallel wrapper."""
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    return model.module if isinstance(model, wrappers) else model


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    builder: str | Callable[..., torch.nn.Module],
    kwargs: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (format in the module docstring); returns the path.

    ``builder(**kwargs)`` must rebuild ``model``'s architecture; its name is checked now (importable by
    another process: not ``__main__``, not a local function), so an unloadable checkpoint is refused at
    save time rather than discovered later.
    """
    from neuromorph import __version__

    name = builder if isinstance(builder, str) else builder_name(builder)
    hint = _check_saveable(name, None if isinstance(builder, str) else builder)
    spec: dict[str, Any] = {"builder": name, "kwargs": dict(kwargs or {})}
    if hint is not None:
        spec["python_path"] = hint
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "neuromorph_version": __version__,
        "model": spec,
        # tensors cloned; non-tensor entries (a module's ``_extra_state``, e.g. a delay layer's kernel
        # form) must themselves be plain data for the weights-only loader
        "state_dict": {k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in unwrap(model).state_dict().items()},
        "info": dict(info or {}),
    }
    if train_state is not None:
        payload["train_state"] = train_state
    return atomic_torch_save(payload, path)


def save_model(
    model: torch.nn.Module,
    path: str | os.PathLike,
    builder: str | Callable[..., torch.nn.Module],
    kwargs: dict[str, Any] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    n_steps: int | None = None,
    recipe: Any = None,
    classes: Sequence[Any] | None = None,
    info: dict[str, Any] | None = None,
) -> Path:
    """Save a model trained in your own code so that ``neuromorph eval/energy/export/plot`` can use it.

    ``builder`` is a function (or class) at the top level of an importable module, given as the object
    or as ``"package.module:function"``; ``builder(**kwargs)`` must rebuild ``model`` (checked now, by
    building it and loading the weights). Nothing is pickled: another process rebuilds the model by
    importing the builder, which it does only when told to trust it (``--trust-builder``).

    Optional facts the commands use: ``input_shape`` (per time step, e.g. ``(2, 34, 34)``; ``export``
    needs it), ``n_steps`` (time steps per sample), ``recipe`` (a recipe name such as ``"nmnist"``, a
    :class:`~neuromorph.train.recipes.Recipe` or its dict: the data set and binning ``eval`` loads;
    without it pass ``--recipe`` to ``eval``), ``classes`` (class names) and free-form ``info``.
    """
    from neuromorph.train.recipes import Recipe, get_recipe

    name = builder if isinstance(builder, str) else builder_name(builder)
    kwargs = dict(kwargs or {})
    _check_saveable(name, None if isinstance(builder, str) else builder)
    rebuilt = resolve_builder(name, trust=True)
    try:
        probe = rebuilt(**kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's builder is reported with its call
        raise CheckpointError(f"save_model: {name}(**{kwargs!r}) failed: {exc}") from exc
    try:
        _load_weights(probe, unwrap(model).state_dict(), f"save_model: {name}(**{kwargs!r})")
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; {name}(**{kwargs!r}) does not rebuild the model given: pass the builder "
                              f"arguments the model was made with") from None
    meta: dict[str, Any] = dict(info or {})
    if recipe is not None:
        if isinstance(recipe, str):
            recipe = get_recipe(recipe)
        elif isinstance(recipe, dict):
            recipe = Recipe.from_dict(recipe)
        if not isinstance(recipe, Recipe):
            raise CheckpointError(f"save_model: recipe must be a recipe name, a Recipe or its dict, got {type(recipe).__name__}")
        meta["recipe"] = recipe.replace(model=name, model_kwargs=kwargs).to_dict()
    if input_shape is not None:
        meta["input_shape"] = [int(d) for d in input_shape]
    data = dict(meta.get("data") or {})
    if n_steps is not None:
        data["n_steps"] = int(n_steps)
    if classes is not None:
        data["classes"] = [str(c) for c in classes]
        meta.setdefault("n_classes", len(data["classes"]))
    if data:
        meta["data"] = data
    return save_checkpoint(path, model, name, kwargs, meta)


def _foreign_message(path: Path, exc: Exception) -> str | None:
    """What a weights-only unpickling failure means, for the files users commonly try (torch.save(model))."""
    # torch words it as "Unsupported global: GLOBAL mod.Name ..." or "unsupported GLOBAL mod.name whose module ..."
    match = re.search(r"GLOBAL (\S+)", str(exc))
    if match is None:
        return None
    global_name = match.group(1)
    return (
        f"checkpoint {str(path)!r} holds pickled Python objects ({global_name}), e.g. a file written by "
        f"torch.save(model): loading it would run code named in the file, which neuromorph never does. Save the model "
        f"with neuromorph.save_model(model, path, builder='package.module:function', kwargs={{...}}, input_shape=...) "
        f"from the script that trained it (see docs/user-models.md)"
    )


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint with ``torch.load(weights_only=True)`` (no code is unpickled).

    Raises ``CheckpointError`` naming the file for a missing, truncated, corrupt, foreign or
    newer-version file: never returns something half-valid.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist", file=path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - damaged bytes make the weights-only unpickler raise anything
        # (IndexError, KeyError, struct.error, ... besides UnpicklingError/EOFError/BadZipFile)
        message = _foreign_message(path, exc)
        if message is not None:
            raise CheckpointError(message, file=path) from exc
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or not a torch file: {exc}", file=path) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        if isinstance(ckpt, dict) and ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
            raise CheckpointError(
                f"{str(path)!r} is a bare state_dict (torch.save(model.state_dict())), not a neuromorph checkpoint: it "
                f"does not say which model the weights belong to; save it with neuromorph.save_model(model, path, "
                f"builder='package.module:function', ...) (see docs/user-models.md)"
            )
        raise CheckpointError(f"{str(path)!r} is not a neuromorph checkpoint (no format={FORMAT!r} field)")
    version = ckpt.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has format version {version!r}; this neuromorph reads <= {VERSION}")
    for key in ("model", "state_dict", "info"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks the field {key!r}")
    model = ckpt["model"]
    if not isinstance(model, dict) or not isinstance(model.get("builder"), str) or not isinstance(model.get("kwargs"), dict):
        raise CheckpointError(f"checkpoint {str(path)!r}: field 'model' must hold 'builder' (str) and 'kwargs' (dict)")
    return ckpt


def build_model(
    ckpt: dict[str, Any],
    path: str | os.PathLike = "<checkpoint>",
    trust_builder: Trust = False,
    python_path: Iterable[str | os.PathLike] = (),
) -> torch.nn.Module:
    """Rebuild the model a loaded checkpoint describes and load its weights strictly.

    ``trust_builder``/``python_path``: see :func:`resolve_builder` (needed for builders outside neuromorph).
    """
    spec = ckpt["model"]
    hint = spec.get("python_path") if isinstance(spec.get("python_path"), str) else None
    builder = resolve_builder(spec["builder"], trust_builder, python_path, where=f"checkpoint {str(path)!r} ", hint=hint)
    try:
        model = builder(**spec["kwargs"])
    except Exception as exc:  # a builder that no longer accepts the stored arguments: incompatible
        raise CheckpointError(f"checkpoint {str(path)!r}: {spec['builder']}(**{spec['kwargs']!r}) failed: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(f"checkpoint {str(path)!r}: {spec['builder']} returned {type(model).__name__}, not a torch.nn.Module")
    _load_weights(model, ckpt["state_dict"], f"checkpoint {str(path)!r}")
    return model


def _load_weights(model: torch.nn.Module, state: dict[str, Any], where: str) -> None:
    """``load_state_dict`` that reports missing/unexpected keys and shape mismatches as one CheckpointError."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # size mismatches raise even with strict=False
        raise CheckpointError(f"{where}: weights do not fit the model: {exc}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{where}: weights do not fit the model: missing keys {result.missing_keys}, unexpected keys {result.unexpected_keys}"
        )


def load_model(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    trust_builder: Trust = False,
    python_path: Iterable[str | os.PathLike] = (),
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a checkpoint and return ``(model, info)``: the rebuilt model in eval mode and its info dict.

    ``info`` carries what the training run recorded: ``recipe`` (the recipe as a dict: data set, data
    root, time bins, ...), ``epoch``, ``metrics``, ``input_shape``. ``info["builder"]``/``info["kwargs"]``
    repeat the model description so callers can rebuild variants. A builder outside neuromorph (a model
    saved with :func:`save_model` from user code) is imported only when ``trust_builder`` allows it; see
    :func:`resolve_builder`.
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    model = build_model(ckpt, path, trust_builder, python_path)
    model.eval()
    info = dict(ckpt["info"])
    info.setdefault("builder", ckpt["model"]["builder"])
    info.setdefault("kwargs", ckpt["model"]["kwargs"])
    _declare_layout(model, info)
    return model, info


def _declare_layout(model: torch.nn.Module, info: dict[str, Any]) -> None:
    """Make the loaded model check its inputs against the recorded layout (``neuromorph.nn.layout``): a
    batch-first or time-less batch then gets a clear error instead of a wrong answer. The time length is
    declared only where it is fixed (frames: recipes that pad to the data set's length, or ``n_steps``
    given to save_model without a recipe)."""
    shape = info.get("input_shape")
    if not isinstance(shape, (list, tuple)) or not shape or not all(isinstance(d, int) for d in shape):
        return
    from neuromorph.nn.layout import expect_input

    steps = (info.get("data") or {}).get("n_steps")
    recipe = info.get("recipe")
    if not isinstance(steps, int) or (isinstance(recipe, dict) and recipe.get("pad") != "dataset"):
        steps = None
    expect_input(model, shape, steps)
