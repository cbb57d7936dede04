"""Declare a model's input layout so that a batch in the wrong layout gets a clear message, not wrong results.

Every neuromorph layer takes time-major ``[T, B, ...]`` input. Habits from other libraries produce
tensors that neuromorph would silently misread: batch-first ``[B, T, ...]`` (what torch's default
``DataLoader`` collate makes of neuromorph samples ``[T, ...]``, keeping their int16 counts), or a frame
batch ``[B, C, H, W]`` without a time axis (a neuron reads it as ``[T=B, B=C, H, W]``). From the shape
alone these cannot always be told apart, so a model declares what one time step looks like:

    model = nm.nn.expect_input(model, (2, 34, 34), steps=5)

and every call checks its input against that (one comparison of shapes per forward, nothing per step).
Checkpoints record the layout (``input_shape``), and models loaded from them check it the same way.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn

from neuromorph.errors import ShapeError

__all__ = ["InputLayout", "expect_input", "check_input"]

_COLLATE_ADVICE = ("torch's default DataLoader collate stacks neuromorph samples [T, ...] batch-first and keeps their "
                   "integer counts: pass collate_fn=neuromorph.data.collate_time_major (time-major float [T, B, ...]), "
                   "or convert a batch with x.transpose(0, 1).float()")


@dataclass(frozen=True)
class InputLayout:
    """What a model's input looks like: ``[T, B, *shape]``; ``steps`` is T when the model has a fixed one."""

    shape: tuple[int, ...]
    steps: Optional[int] = None

    def describe(self) -> str:
        t = "T" if self.steps is None else f"T={self.steps}"
        return f"[{t}, B, {', '.join(map(str, self.shape))}]"


def check_input(x: Any, layout: InputLayout, name: str = "model") -> None:
    """Raise ``ShapeError`` (or warn, where only the time length is suspicious) if ``x`` does not fit ``layout``."""
    if not isinstance(x, torch.Tensor):
        return
    expected = layout.describe()
    if not (x.is_floating_point() or x.is_complex()):
        batch_first = (x.dim() == len(layout.shape) + 2 and tuple(x.shape[2:]) == layout.shape)
        hint = " (it looks like batch-first [B, T, ...] event counts)" if batch_first else ""
        raise ShapeError(f"{name}: input of dtype {x.dtype} and shape {tuple(x.shape)}{hint}; expected float time-major "
                         f"{expected}. {_COLLATE_ADVICE}")
    n = len(layout.shape)
    if x.dim() == n + 1 and tuple(x.shape[1:]) == layout.shape:
        raise ShapeError(
            f"{name}: input of shape {tuple(x.shape)} has no time axis; expected time-major {expected}. For one time "
            f"step use x.unsqueeze(0), or run the network step by step with neuromorph.nn.Streaming (state is kept "
            f"between steps), not a batch of frames read as a sequence"
        )
    if x.dim() != n + 2 or tuple(x.shape[2:]) != layout.shape:
        raise ShapeError(f"{name}: input of shape {tuple(x.shape)}; expected time-major {expected} (every neuromorph "
                         f"layer takes [T, B, ...])")
    if layout.steps is not None and x.shape[0] != layout.steps and x.shape[1] == layout.steps:
        warnings.warn(
            f"{name}: input of shape {tuple(x.shape)} has {x.shape[0]} steps on axis 0 but {layout.steps} (the model's "
            f"declared T) on axis 1: if it is batch-first [B, T, ...], transpose it with x.transpose(0, 1); "
            f"neuromorph reads axis 0 as time", stacklevel=4)


def _pre_hook(module: nn.Module, args: tuple) -> None:
    layout = getattr(module, "_neuromorph_input", None)
    if layout is not None and args:
        check_input(args[0], layout, type(module).__name__)


def expect_input(module: nn.Module, shape: Sequence[int], steps: Optional[int] = None) -> nn.Module:
    """Declare that ``module`` takes ``[T, B, *shape]`` (``steps``: its fixed T, if any); returns ``module``.

    Each call then checks its first argument: integer input (batch-first counts from torch's default
    collate), a missing time axis (``[B, C, H, W]`` frames) or a wrong per-step shape raise ``ShapeError``
    with the fix; with ``steps``, an input whose axis 1 (not axis 0) has that length gets a warning that it
    may be batch-first. Declaring again replaces the layout.
    """
    layout = InputLayout(tuple(int(d) for d in shape), None if steps is None else int(steps))
    had = getattr(module, "_neuromorph_input", None) is not None
    module._neuromorph_input = layout  # plain attribute: not part of the state dict
    if not had:
        module.register_forward_pre_hook(_pre_hook)
    return module


def input_layout(module: nn.Module) -> Optional[InputLayout]:
    """The layout declared with :func:`expect_input`, or None."""
    return getattr(module, "_neuromorph_input", None)
