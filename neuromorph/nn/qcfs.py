"""QCFS activation and ANN→SNN conversion to soft-reset IF neurons.

Source: the Masked Spiking Transformer code (Wang et al., ICCV 2023; ``bic-L/Masked-Spiking-Transformer@368c9a5``,
``modules_QCFS.py``, ``utils_QCFS.py``), which uses the quantization-clip-floor-shift activation of
Bu et al. (ICLR 2022).
Method page: ``docs/methods/qcfs.md`` (equations, defaults, what neuromorph does differently).

Training (ANN):   a = λ · clip(floor(x·L/λ + ½) / L, 0, 1),   L = 16 levels, λ trainable (init 2.0),
                  floor with a straight-through gradient.
Conversion (SNN): each QCFS becomes an IF neuron on x/λ with threshold 1, soft reset (subtract 1),
                  initial membrane ½, output spike·λ; the input is presented at every step.

With a constant input x ∈ [0, λ] the IF neuron emits exactly floor(x·L/λ + ½) spikes in L steps, so
rate·λ equals QCFS(x) after T = L steps (the property tested in tests/nn/test_qcfs.py).
"""

from __future__ import annotations

import copy
import math

import torch

from neuromorph.errors import ConfigError, ShapeError
from neuromorph.nn.protocol import LayerDecl, Role

__all__ = ["QCFS", "QCFSNeuron", "ConvertedSNN", "convert_to_snn"]


class _FloorSTE(torch.autograd.Function):
    """floor in the forward pass, identity gradient (straight-through) in the backward pass."""

    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class QCFS(torch.nn.Module):
    """Quantization-clip-floor-shift activation: a = λ·clip(floor(x·L/λ + ½)/L, 0, 1).

    Implemented as in the MST/QCFS code: x/λ is clipped to [0, 1] first, then quantised; the forward
    value equals the formula above (clip and floor commute on this range) and λ receives the
    gradient of the clip and of the outer product (floor is straight-through).

    Args:
        levels: L, the number of quantisation steps (16 in MST); the converted SNN needs about L steps.
        lam: initial λ (trainable, one scalar per activation, init 2.0 in MST).
    """

    layer_decl = LayerDecl(Role.ACTIVATION, "qcfs")

    def __init__(self, levels: int = 16, lam: float = 2.0) -> None:
        super().__init__()
        if not isinstance(levels, int) or isinstance(levels, bool) or levels < 1:
            raise ConfigError(f"QCFS: levels={levels!r} must be a positive integer (L, the quantisation steps)")
        try:
            lam_ok = math.isfinite(float(lam)) and float(lam) > 0
        except (TypeError, ValueError):
            lam_ok = False
        if not lam_ok:
            raise ConfigError(f"QCFS: lam={lam!r} must be a finite number > 0 (λ, the clipping scale)")
        self.levels = levels
        self.lam = torch.nn.Parameter(torch.tensor(float(lam)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.lam.to(x.dtype)
        y = torch.clamp(x / lam, 0.0, 1.0)
        y = _FloorSTE.apply(y * self.levels + 0.5) / self.levels
        return y * lam

    def extra_repr(self) -> str:
        return f"levels={self.levels}, lam={float(self.lam.detach()):.4g}"


class QCFSNeuron(torch.nn.Module):
    """Soft-reset IF neuron that replaces a QCFS activation after conversion (step mode, stateful).

    Per call (one time step):  v ← v + x/λ ;  s = H(v − 1) ;  v ← v − s ;  output s·λ,
    with v = ½ before the first step. The test is ``v ≥ 1`` (non-strict), as the QCFS code's
    ``ZIF`` does; with a strict ">" the rate would miss QCFS at the rounding boundaries
    floor(·) = integer. State persists across calls until ``reset_state()``; ``ConvertedSNN``
    resets it before every sequence, so users never have to.

    Layer protocol: a neuron run one step per call (``stepwise``); its spikes are the nonzero outputs.
    """

    layer_decl = LayerDecl(Role.NEURON, "QCFS_IF", stepwise=True)

    def __init__(self, lam: torch.Tensor | float, levels: int | None = None) -> None:
        super().__init__()
        self.register_buffer("lam", torch.as_tensor(lam, dtype=torch.get_default_dtype()).detach().clone())
        self.levels = levels
        self.v: torch.Tensor | None = None
        self.last_spikes: torch.Tensor | None = None

    def reset_state(self) -> None:
        self.v = None
        self.last_spikes = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lam = self.lam.to(x.dtype)
        if self.v is None:
            self.v = torch.full_like(x, 0.5)
        elif self.v.shape != x.shape:
            raise ShapeError(
                f"QCFSNeuron: input shape {tuple(x.shape)} differs from the state's {tuple(self.v.shape)}; "
                "call reset_state() (ConvertedSNN does) before a new sequence"
            )
        v = self.v + x / lam
        spikes = (v >= 1.0).to(x.dtype)
        self.v = v - spikes
        self.last_spikes = spikes
        return spikes * lam

    def extra_repr(self) -> str:
        return f"lam={float(self.lam):.4g}, v_init=0.5, threshold=1 (on x/lam), reset=soft"


class ConvertedSNN(torch.nn.Module):
    """A network whose QCFS activations became IF neurons, run for T steps.

    ``forward(x, T)`` with a static input ``x`` of the ANN's input shape presents it at every step;
    ``forward(x)`` with ``x`` of shape ``[T, B, ...]`` feeds step t the slice ``x[t]``. Returns the
    per-step outputs stacked as ``[T, ...]``; MST sums (equivalently averages) them over T, so
    ``out.cumsum(0) / arange(1, T+1)`` gives the prediction as a function of T. Neuron state is reset
    at the start of every call (stateless across calls).
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def neurons(self) -> list[QCFSNeuron]:
        return [m for m in self.model.modules() if isinstance(m, QCFSNeuron)]

    def forward(self, x: torch.Tensor, T: int | None = None) -> torch.Tensor:
        for n in self.neurons():
            n.reset_state()
        if T is None:
            steps = x.unbind(0)
        else:
            if not isinstance(T, int) or T < 1:
                raise ConfigError(f"ConvertedSNN: T={T!r} must be a positive number of time steps")
            steps = [x] * T
        outs = [self.model(xt) for xt in steps]
        for n in self.neurons():  # do not keep the last sequence's state alive between calls
            n.reset_state()
        return torch.stack(outs)


def convert_to_snn(model: torch.nn.Module) -> ConvertedSNN:
    """Convert a trained QCFS network to an SNN of soft-reset IF neurons (MST / QCFS conversion).

    Every ``QCFS`` module is replaced by a ``QCFSNeuron`` with the same λ (threshold 1 on x/λ,
    initial membrane ½, output spike·λ); every other module is kept as is (including ``SpikeMask``,
    which then masks spikes freshly at every step). The copy is put in eval mode: BatchNorm must
    use its running statistics at every step. The input ANN is not modified.

    Raises:
        ConfigError: if the model has no QCFS activation (nothing to convert).
    """
    if not any(isinstance(m, QCFS) for m in model.modules()):
        raise ConfigError(f"convert_to_snn: {type(model).__name__} has no QCFS activation to convert")
    snn = copy.deepcopy(model)

    def _swap(parent: torch.nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, QCFS):
                setattr(parent, name, QCFSNeuron(child.lam.detach(), levels=child.levels))
            else:
                _swap(child)

    if isinstance(snn, QCFS):
        snn = QCFSNeuron(snn.lam.detach(), levels=snn.levels)
    else:
        _swap(snn)
    return ConvertedSNN(snn).eval()
