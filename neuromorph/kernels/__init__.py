"""Interchangeable backends for the multi-step neuron dynamics.

All backends share one signature, ``run(x, params, cfg, state=None, return_membrane=False)`` returning
``(out, membrane, final_state)``, and give the same results (tested against ``reference``):

- ``reference``: plain autograd, step by step; the ground truth (and the only one with a ``pre_fire`` hook).
- ``fused``: one autograd Function over all T with a hand-written backward (numba on the CPU, torch
  operations elsewhere).
- ``triton``: forward and backward as Triton kernels (CUDA; ``TRITON_INTERPRET=1`` runs them on the CPU).

``backend="auto"`` picks ``triton`` for CUDA tensors when Triton is installed, else ``fused``.
"""

from __future__ import annotations

import importlib.util
import os

import torch

from neuromorph.errors import check_choice
from neuromorph.kernels import fused, reference
from neuromorph.kernels.config import DynamicsConfig, DynamicsParams, NeuronState, initial_state

BACKENDS = ("auto", "reference", "fused", "triton")

__all__ = ["BACKENDS", "DynamicsConfig", "DynamicsParams", "NeuronState", "initial_state", "run", "resolve_backend",
           "triton_available"]


def triton_available() -> bool:
    """Whether the Triton backend can run here (CUDA, or the Triton interpreter on the CPU)."""
    if importlib.util.find_spec("triton") is None:
        return False
    return torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"


def resolve_backend(backend: str, x: torch.Tensor) -> str:
    """The concrete backend ``backend`` stands for on tensor ``x``."""
    check_choice("backend", backend, BACKENDS)
    if backend != "auto":
        return backend
    if x.is_cuda and importlib.util.find_spec("triton") is not None:
        return "triton"
    return "fused"


def run(x, params, cfg, state=None, return_membrane=False, backend="auto"):
    """Dispatch to the chosen backend (see module docstring)."""
    name = resolve_backend(backend, x)
    if name == "reference":
        return reference.run(x, params, cfg, state, return_membrane)
    if name == "fused":
        return fused.run(x, params, cfg, state, return_membrane)
    from neuromorph.kernels import triton as triton_backend

    return triton_backend.run(x, params, cfg, state, return_membrane)
