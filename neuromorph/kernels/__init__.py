"""Interchangeable backends for the multi-step neuron dynamics.

All backends share one signature, ``run(x, params, cfg, state=None, return_membrane=False)`` returning
``(out, membrane, final_state)``, and give the same results (tested against ``reference``):

- ``reference``: plain autograd, step by step, written independently of the shared definition; the ground
  truth (and the only one with a ``pre_fire`` hook).
- ``fused``: one autograd node over all T with the hand-written adjoint (numba on the CPU, torch
  operations elsewhere).
- ``triton``: forward and backward as Triton kernels (CUDA; ``TRITON_INTERPRET=1`` runs them on the CPU).

``fused`` and ``triton`` are compiled from the one definition in :mod:`neuromorph.functional.dynamics`.
``backend="auto"`` picks ``triton`` for CUDA tensors when Triton is installed, else ``fused``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import torch

from neuromorph.errors import ConfigError, check_choice
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


def _triton_backend(x: torch.Tensor):
    """The Triton backend module, or a ConfigError that says what is missing."""
    if importlib.util.find_spec("triton") is None:
        raise ConfigError("backend='triton' needs the Triton package, which is not installed: "
                          "pip install 'neuromorph[gpu]' (or use backend='fused' or 'auto')")
    if not x.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ConfigError(f"backend='triton' runs on CUDA tensors, got a tensor on {x.device}; move the model and "
                          f"input to the GPU, use backend='fused' or 'auto', or set TRITON_INTERPRET=1 before "
                          f"importing triton to run the kernels on the CPU (slow, for testing)")
    return importlib.import_module("neuromorph.kernels.triton")


def run(x, params, cfg, state=None, return_membrane=False, backend="auto", active=False):
    """Dispatch to the chosen backend (see module docstring). ``active``: let the spikes carry their active
    set for the sparse input gradient of the next synapse (fused backend on the CPU only; see
    :func:`neuromorph.kernels.fused.run`)."""
    name = resolve_backend(backend, x)
    if name == "reference":
        return reference.run(x, params, cfg, state, return_membrane)
    if name == "fused":
        return fused.run(x, params, cfg, state, return_membrane, active=active)
    return _triton_backend(x).run(x, params, cfg, state, return_membrane)
