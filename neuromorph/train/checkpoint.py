"""Checkpoints: atomic save, code-free load, and rebuilding a model from what a checkpoint records.

Format (a plain ``dict`` written with ``torch.save``; every value is a tensor, a number, a string, a list
or a dict, so that ``torch.load(weights_only=True)`` can read it without unpickling any code)::

    {
      "format": "neuromorph.checkpoint", "version": 1, "neuromorph_version": "0.1.0",
      "model": {"builder": "neuromorph.models.nmnist:NMNISTConvSNN", "kwargs": {...}},
      "state_dict": {...},            # model.state_dict() (unwrapped from DDP)
      "info": {...},                  # recipe (as a dict), data set, metrics, epoch: free-form plain data
      "train_state": {...} | absent,  # optimisers, schedules, RNG states, epoch/step: what --resume needs
    }

The model is rebuilt by calling ``builder(**kwargs)``. The builder is named, not pickled, and only
callables inside the ``neuromorph`` package (or registered in-process with :func:`register_builder`)
are accepted, so a checkpoint from an untrusted source cannot make the loader run foreign code.
"""

from __future__ import annotations

import copy
import importlib
import os
from pathlib import Path
from typing import Any, Callable

import torch

from neuromorph._atomic import atomic_path
from neuromorph.errors import CheckpointError

FORMAT = "neuromorph.checkpoint"
VERSION = 1

_BUILDERS: dict[str, Callable[..., torch.nn.Module]] = {}


def register_builder(name: str, builder: Callable[..., torch.nn.Module]) -> None:
    """Allow ``name`` (any string) as a model builder in checkpoints of this process.

    For models that live outside the ``neuromorph`` package (user code, tests); builders inside the
    package are found by their ``"module:qualname"`` without registration.
    """
    _BUILDERS[name] = builder


def builder_name(builder: Callable[..., Any]) -> str:
    """The ``"module:qualname"`` a checkpoint stores for ``builder`` (or its registered name)."""
    for name, fn in _BUILDERS.items():
        if fn is builder:
            return name
    return f"{builder.__module__}:{builder.__qualname__}"


def resolve_builder(name: str) -> Callable[..., torch.nn.Module]:
    """Find the callable a checkpoint names; refuse anything outside ``neuromorph`` or the registry."""
    if name in _BUILDERS:
        return _BUILDERS[name]
    module_name, _, qualname = name.partition(":")
    if not qualname or not (module_name == "neuromorph" or module_name.startswith("neuromorph.")):
        raise CheckpointError(
            f"model builder {name!r} is neither inside the neuromorph package nor registered with "
            f"neuromorph.train.checkpoint.register_builder (registered: {sorted(_BUILDERS) or 'none'})"
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"model builder {name!r} not found in this neuromorph version: {exc}") from exc
    if not callable(obj):
        raise CheckpointError(f"model builder {name!r} is not callable")
    return obj


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

    ``builder(**kwargs)`` must rebuild ``model``'s architecture; it is checked now (resolvable name),
    so an unloadable checkpoint is refused at save time rather than discovered later.
    """
    from neuromorph import __version__

    name = builder if isinstance(builder, str) else builder_name(builder)
    resolve_builder(name)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "neuromorph_version": __version__,
        "model": {"builder": name, "kwargs": dict(kwargs or {})},
        # tensors cloned; non-tensor entries (a module's ``_extra_state``, e.g. a delay layer's kernel
        # form) must themselves be plain data for the weights-only loader
        "state_dict": {k: v.detach().clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in unwrap(model).state_dict().items()},
        "info": dict(info or {}),
    }
    if train_state is not None:
        payload["train_state"] = train_state
    return atomic_torch_save(payload, path)


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
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or not a torch file: {exc}", file=path) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
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


def build_model(ckpt: dict[str, Any], path: str | os.PathLike = "<checkpoint>") -> torch.nn.Module:
    """Rebuild the model a loaded checkpoint describes and load its weights strictly."""
    spec = ckpt["model"]
    builder = resolve_builder(spec["builder"])
    try:
        model = builder(**spec["kwargs"])
    except Exception as exc:  # a builder that no longer accepts the stored arguments: incompatible
        raise CheckpointError(f"checkpoint {str(path)!r}: {spec['builder']}(**{spec['kwargs']!r}) failed: {exc}") from exc
    result = model.load_state_dict(ckpt["state_dict"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit {spec['builder']}: missing keys {result.missing_keys}, "
            f"unexpected keys {result.unexpected_keys}"
        )
    return model


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a checkpoint and return ``(model, info)``: the rebuilt model in eval mode and its info dict.

    ``info`` carries what the training run recorded: ``recipe`` (the recipe as a dict: data set, data
    root, time bins, ...), ``epoch``, ``metrics``. ``info["builder"]``/``info["kwargs"]`` repeat the
    model description so callers can rebuild variants.
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    model = build_model(ckpt, path)
    model.eval()
    info = dict(ckpt["info"])
    info.setdefault("builder", ckpt["model"]["builder"])
    info.setdefault("kwargs", ckpt["model"]["kwargs"])
    return model, info
