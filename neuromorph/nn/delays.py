"""Learnable synaptic delays by Dilated Convolution with Learnable Spacings (DCLS).

Hammouamri, Khalfaoui-Hassani, Masquelier, "Learning Delays in Spiking Neural Networks using Dilated
Convolutions with Learnable Spacings", ICLR 2024 (code: Thvnvtos/SNN-delays@d169b4e, library
K-H-Ismail/Dilated-Convolution-with-Learnable-Spacings-PyTorch@83de562, ``DCLS/construct/modules.py``).
The equations below are those of the official SNN-delays and DCLS code.
Method page: ``docs/methods/delays.md`` (equations, defaults, what neuromorph does differently).

A fully connected layer in which every synapse i→j has a weight ``w_ji`` and a real-valued position
``P_ji ∈ [-⌊K/2⌋, ⌊K/2⌋]``. The layer is a 1-D convolution over time whose kernel for (j, i) holds a
single tap at delay ``d_ji = ⌊K/2⌋ - P_ji`` steps, spread into a normalised Gaussian so that the
position is differentiable::

    c_ji    = P_ji + ⌊K/2⌋                                     (tap index of the centre, 0..K-1)
    g_ji[n] = exp(-½ ((n - c_ji) / σ_eff)²),  σ_eff = |σ| + 0.27        ("gauss" form, training)
    g_ji[n] = relu(|σ| + 1 - |n - c_ji|)                              ("max" form, inference)
    k_ji[n] = w_ji · g_ji[n] / (Σ_m g_ji[m] + 1e-7)                     (taps sum to w_ji)
    y_j[t]  = Σ_i Σ_n k_ji[n] · s_i[t + n - (K-1)]                      (tap n is delay K-1-n)

for ``t = 0 .. T + ⌊(K-1)/2⌋ - 1``: the output is ``⌊(K-1)/2⌋`` steps longer than the input so that
delayed spikes still reach the next layer (the SNN-delays convention: zero-pad K-1 steps on the left
and ⌊(K-1)/2⌋ on the right, then a valid cross-correlation).

Choices (documented where they differ from the reference code):
- Tensors are time-major ``[T, B, in] -> [T + ⌊(K-1)/2⌋, B, out]`` (the reference permutes to
  ``[B, C, T]`` and pads by hand around ``Dcls1d``).
- The convolution over time is computed in the frequency domain by default (``method="spectral"``):
  a real DFT over time written as matrix products (time-major input is already the ``[T, B·in]``
  matrix the DFT multiplies), one complex ``[B, in] x [in, out]`` product per frequency (3 real
  products, Gauss's trick) and an inverse DFT restricted to the output steps. This is exact circular
  convolution of length N = T + K - 1, which has no wrap-around in the kept outputs, and takes about
  8 times fewer multiply-adds than the direct convolution at the SHD size (K = 25, T = 100), nearly
  all of them in BLAS products (also in the backward pass; ``torch.fft`` was slower here because its backward through the zero-padded kernel
  transform builds full-length spectra). It equals ``conv1d`` to float rounding (relative ~1e-6 in
  float32). ``method="direct"`` runs ``torch.nn.functional.conv1d`` exactly as ``Dcls1d`` does;
  ``"auto"`` picks the one with fewer operations for the input's T, B and the layer's sizes.
- σ is a (non-trained) buffer of shape ``[out, in]``, as in SNN-delays where ``SIG`` has
  ``requires_grad=False`` and one value for the whole layer; :class:`SigmaSchedule` shrinks it.
- In the "max" form the taps are normalised without DCLS's 1e-7 (their sum is >= 1 anyway), so a
  rounded synapse is exactly one tap of weight w; DCLS gives w/(1 + 1e-7) there.
- The kernel form ("gauss" or "max") is saved in the state dict (``_extra_state``) so that a rounded
  model reloads as a rounded model.
- Inference with integer delays (after :meth:`DelayedLinear.round_delays` or inside :func:`rounded_delays`)
  runs event-driven when no gradient is needed (``backend="auto"``, :mod:`neuromorph.kernels.sparse_delays`):
  each input event adds ``w_ji · x`` to output step ``t + d_ji``, ``nnz(x) · fan-out`` multiply-adds instead
  of a convolution over all K taps; the result equals the dense evaluation to float rounding. Training
  (gradients, real-valued delays) always runs the dense methods above. :meth:`DelayedLinear.stream` runs
  the layer one step at a time with a ring buffer of pending delayed currents (used by ``nn.Streaming``).
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.utils.hooks import RemovableHandle

from neuromorph.errors import ConfigError, NonFiniteError, ShapeError, check_choice
from neuromorph.kernels import sparse, sparse_delays
from neuromorph.nn.protocol import LayerDecl, Role

__all__ = [
    "DelayState",
    "DelayedLinear",
    "SigmaSchedule",
    "clamp_after_step",
    "clamp_positions",
    "delay_kernel_size",
    "delayed_layers",
    "round_delays",
    "rounded_delays",
]

FORMS = ("gauss", "max")
METHODS = ("auto", "spectral", "direct", "shift")
SIGMA_OFFSET = 0.27  # σ_eff = |σ| + 0.27 (in the DCLS library since 2023-06)
NORM_EPS = 1e-7  # added to the tap sum before normalising (DCLS)
#: ``backend="auto"`` runs event-driven when ``nnz(x) · (fan-out + EVENT_OVERHEAD) · EVENT_COST`` is below the
#: multiply-adds of the cheapest dense method: an event-driven multiply-add (a scattered write) costs about
#: EVENT_COST multiply-adds of the dense methods (BLAS products), and each event a fixed EVENT_OVERHEAD more.
#: Measured on one core of the 2-core x86-64 machine of benchmarks/RESULTS.md (issue 14, "DelayedLinear"):
#: 10-25 for 256 outputs, 35-45 for 20 outputs; the measured crossover is 15-25 % input density for 256-wide layers.
EVENT_COST = 16.0
EVENT_OVERHEAD = 24.0


def delay_kernel_size(max_delay: float, dt: float = 1.0) -> int:
    """Kernel length K for a maximum delay: ``K = ⌊max_delay / dt⌋``, made odd by adding 1 if even.

    Hammouamri et al., ICLR 2024: 250 ms at dt = 10 ms gives K = 25 (SHD); 300 ms gives 30, bumped to 31 (SSC/GSC).
    Delays then range over 0 .. K-1 steps. ``max_delay`` shorter than one step raises ``ConfigError``.
    """
    if isinstance(max_delay, bool) or not isinstance(max_delay, (int, float)) or not math.isfinite(max_delay):
        raise ConfigError(f"max_delay={max_delay!r} must be a finite number")
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not (dt > 0 and math.isfinite(dt)):
        raise ConfigError(f"dt={dt!r} must be a finite number > 0")
    steps = math.floor(max_delay / dt + 1e-9)  # 1e-9: 0.3 / 0.1 must give 3, not 2
    if steps < 1:
        raise ConfigError(f"max_delay={max_delay!r} is shorter than one time step (dt={dt!r}); it must be >= dt")
    return steps if steps % 2 == 1 else steps + 1


class DelayedLinear(torch.nn.Module):
    """Fully connected layer with one learnable weight and one learnable delay per synapse (DCLS).

    Equations: see the module docstring (Hammouamri et al., ICLR 2024).

    Args:
        in_features, out_features: numbers of presynaptic and postsynaptic neurons.
        max_delay: the longest delay, in steps (or in the units of ``dt`` when given); the kernel
            length is ``K = delay_kernel_size(max_delay, dt)`` (odd), delays span 0 .. K-1 steps.
        dt: length of one time step in the units of ``max_delay`` (default 1: ``max_delay`` in steps).
        form: "gauss" (training; Gaussian taps of width σ_eff = |σ| + 0.27) or "max" (triangular taps
            relu(|σ| + 1 - |n - c|); with σ = 0 and integer positions, one tap per synapse).
        sigma: initial σ (default ⌊K/2⌋, the SNN-delays start value); a scalar or an ``[out, in]`` tensor.
        bias: add a learnable bias per output (SNN-delays uses none).
        method: "spectral" (DFT as matrix products), "direct" (``conv1d``, the computation ``Dcls1d``
            does), "shift" (one matrix product per delay that any synapse uses: cheap for rounded
            layers with few distinct delays) or "auto" (whichever needs fewer operations; "direct" or
            "shift" for half-precision inputs).
        backend: as ``nn.Linear``'s: "auto" (default) evaluates event-driven when the delays are integer
            (rounded), no gradient is needed, the tensors are CPU float32/float64 and the input is sparse
            enough (:data:`EVENT_COST`, :data:`EVENT_OVERHEAD`), else with ``method``; "sparse" insists (a
            ConfigError when not possible); "dense" always uses ``method``.
            ``neuromorph.kernels.sparse.synapse_backend`` overrides "auto" layers. After a call,
            ``last_path`` is "sparse" or "dense".

    Shapes: input ``[T, B, in_features]`` (time-major), output ``[T + ⌊(K-1)/2⌋, B, out_features]``.

    Attributes: ``weight`` ``[out, in]``, ``positions`` ``[out, in]`` (P, clamped to ±⌊K/2⌋ by
    :meth:`clamp_positions`), buffer ``sigma`` ``[out, in]``, ``kernel_size`` (K), ``form``.
    """

    layer_decl = LayerDecl(Role.SYNAPSE, "delayed_linear", mixes_time=True)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        max_delay: float,
        *,
        dt: float = 1.0,
        form: str = "gauss",
        sigma: float | Tensor | None = None,
        bias: bool = False,
        method: str = "auto",
        backend: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"DelayedLinear: {name}={value!r} must be a positive integer")
        self.in_features = in_features
        self.out_features = out_features
        try:
            self.kernel_size = delay_kernel_size(max_delay, dt)
        except ConfigError as exc:
            raise ConfigError(f"DelayedLinear({in_features}, {out_features}): {exc}") from None
        check_choice("DelayedLinear form", form, FORMS)
        check_choice("DelayedLinear method", method, METHODS)
        check_choice("DelayedLinear backend", backend, sparse.SYNAPSE_BACKENDS)
        self.form = form
        self.method = method
        self.backend = backend
        self.last_path: str | None = None
        self._cache: dict[str, Any] = {}  # packed synapses / dense taps for inference, keyed by tensor versions
        factory = {"device": device, "dtype": dtype}
        self.weight = torch.nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.positions = torch.nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.register_buffer("sigma", torch.empty(out_features, in_features, **factory))
        self.bias = torch.nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.reset_parameters()
        self.set_sigma(float(self.kernel_size // 2) if sigma is None else sigma)

    # ------------------------------------------------------------------ parameters
    @property
    def half_width(self) -> int:
        """⌊K/2⌋: positions lie in [-⌊K/2⌋, ⌊K/2⌋], delay = ⌊K/2⌋ - P."""
        return self.kernel_size // 2

    @property
    def output_extension(self) -> int:
        """Steps the output is longer than the input: ⌊(K-1)/2⌋, so delayed spikes still reach the readout."""
        return (self.kernel_size - 1) // 2

    def _label(self) -> str:
        return f"DelayedLinear({self.in_features}, {self.out_features}, kernel_size={self.kernel_size})"

    def reset_parameters(self) -> None:
        """SNN-delays initialisation (``init_model``): Kaiming-uniform weights (gain for ReLU, fan-in =
        in_features), positions ~ U(⌊-K/2⌋, ⌊K/2⌋) then clamped, so about 1/K of them sit at the lower
        bound (Python's ``-K//2`` floors: U(-13, 12) for K = 25), no bias (zero when enabled)."""
        torch.nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")
        with torch.no_grad():
            self.positions.uniform_((-self.kernel_size) // 2, self.kernel_size // 2)
            self.clamp_positions()
            if self.bias is not None:
                self.bias.zero_()

    def clamp_positions(self) -> None:
        """Clamp P to [-⌊K/2⌋, ⌊K/2⌋] in place; call after every optimizer step (see :func:`clamp_after_step`)."""
        with torch.no_grad():
            self.positions.clamp_(-self.half_width, self.half_width)

    def apply_constraints(self) -> None:
        """The layer's declared projection (see :func:`neuromorph.nn.apply_constraints`): clamp the positions,
        which the training loop then does after every optimizer step like for every other layer."""
        self.clamp_positions()

    def _check_pair_shape(self, name: str, value: Tensor) -> None:
        if value.shape != (self.out_features, self.in_features):
            raise ShapeError(
                f"{self._label()}: {name} must have shape [out_features, in_features] = "
                f"[{self.out_features}, {self.in_features}], got {list(value.shape)}"
            )
        if not torch.isfinite(value).all():
            raise NonFiniteError(f"{self._label()}: {name} contains NaN or Inf")

    def set_sigma(self, value: float | Tensor) -> None:
        """Set σ for every synapse: a number or a tensor of shape [] or [out, in] (σ_eff = |σ| + 0.27)."""
        value = torch.as_tensor(value, dtype=self.sigma.dtype, device=self.sigma.device)
        if value.dim() == 0:
            value = value.expand(self.out_features, self.in_features)
        self._check_pair_shape("sigma", value)
        with torch.no_grad():
            self.sigma.copy_(value)

    def set_positions(self, value: Tensor) -> None:
        """Set the positions P (shape [out, in]); they are clamped to [-⌊K/2⌋, ⌊K/2⌋]."""
        value = torch.as_tensor(value, dtype=self.positions.dtype, device=self.positions.device)
        self._check_pair_shape("positions", value)
        with torch.no_grad():
            self.positions.copy_(value)
        self.clamp_positions()

    def set_delays(self, delays: Tensor) -> None:
        """Set integer or real delays in steps (shape [out, in], each in [0, K-1]): P = ⌊K/2⌋ - d."""
        delays = torch.as_tensor(delays, dtype=self.positions.dtype, device=self.positions.device)
        self._check_pair_shape("delays", delays)
        if (delays < 0).any() or (delays > self.kernel_size - 1).any():
            raise ConfigError(f"{self._label()}: delays must lie in [0, {self.kernel_size - 1}] steps")
        self.set_positions(self.half_width - delays)

    def delays(self) -> Tensor:
        """Current (real-valued) delays in steps, ``d = ⌊K/2⌋ - P`` (detached, shape [out, in])."""
        return self.half_width - self.positions.detach()

    def integer_delays(self) -> Tensor:
        """The integer delays that :meth:`round_delays` would give (int64 [out, in]); changes nothing."""
        p = self.positions.detach().round().clamp(-self.half_width, self.half_width)
        return (self.half_width - p).to(torch.int64)

    def round_delays(self) -> Tensor:
        """Switch to integer delays for inference and export (as SNN-delays does).

        Sets σ = 0, the "max" form, P ← clamp(round(P)) (``torch.round``: half to even). Each synapse
        then has exactly one tap, of weight w_ji, at delay d_ji = ⌊K/2⌋ - P_ji. Returns those delays
        (int64, [out, in]). Use :func:`rounded_delays` to round temporarily (evaluation) and restore.
        """
        with torch.no_grad():
            self.positions.round_()
        self.clamp_positions()
        self.set_sigma(0.0)
        self.form = "max"
        return self.integer_delays()

    # state dict: the kernel form changes what the same tensors compute, so it travels with them
    def get_extra_state(self) -> dict[str, Any]:
        return {"form": self.form}

    def set_extra_state(self, state: Any) -> None:
        form = state.get("form") if isinstance(state, dict) else None
        check_choice(f"{self._label()} saved form", form, FORMS)
        self.form = form

    # ------------------------------------------------------------------ kernel
    def kernel(self) -> Tensor:
        """The convolution kernel ``k`` of shape [out, in, K] in ``Dcls1d``/``conv1d`` order (tap n is
        delay K-1-n); differentiable w.r.t. ``weight`` and ``positions``. Taps of a synapse sum to w_ji."""
        return self.taps().permute(2, 1, 0).flip(-1)

    def taps(self) -> Tensor:
        """The same kernel indexed by delay: ``taps[d, i, j] = k_ji[K-1-d]`` (shape [K, in, out]), the
        weight with which x_i[t - d] reaches y_j[t]; the layout the time convolution multiplies with."""
        k = self.kernel_size
        centre = (self.positions + self.half_width).t().contiguous()  # c_ij, [in, out]
        sigma = self.sigma.abs().t().contiguous()
        weight = self.weight.t().contiguous()
        if self.form == "gauss":
            return _GaussTaps.apply(weight, centre, sigma + SIGMA_OFFSET, k)
        # tap index n = K-1-d; the triangular taps of a centre inside [0, K-1] sum to >= 1, so DCLS's
        # additive 1e-7 is left out and a rounded synapse is exactly one tap of weight w (the clamp only
        # avoids 0/0 for a centre pushed outside the kernel by an unclamped optimizer step)
        n = torch.arange(k - 1, -1, -1, device=centre.device, dtype=centre.dtype).view(k, 1, 1)
        g = torch.relu(sigma + 1.0 - (n - centre).abs())
        return weight * (g / g.sum(0).clamp_min(NORM_EPS))

    # ------------------------------------------------------------------ forward
    def used_delays(self) -> list[int]:
        """Delays (steps) at which some synapse has a nonzero tap profile, whatever its weight.

        All K for the "gauss" form; in the "max" form those within σ + 1 of a centre, so a rounded layer
        lists the distinct integer delays of its synapses. Taps outside this set are zero and have zero
        gradient (also for a weight that is exactly 0), so leaving them out changes nothing.
        """
        k = self.kernel_size
        if self.form == "gauss":
            return list(range(k))
        with torch.no_grad():
            centre = self.positions + self.half_width
            reach = self.sigma.abs() + 1.0
            d = torch.arange(k, device=centre.device, dtype=centre.dtype).view(k, 1, 1)
            near = ((k - 1 - d) - centre).abs() < reach  # tap n = K-1-d
            return torch.nonzero(near.flatten(1).any(1)).flatten().tolist()

    def _dense_costs(self, x: Tensor) -> dict[str, int]:
        """Multiply-adds per batch element of "direct" and (float32/64) "spectral" for input ``x``."""
        steps = x.shape[0]
        n_in, n_out, k = self.in_features, self.out_features, self.kernel_size
        out_steps = steps + self.output_extension
        costs = {"direct": out_steps * k * n_in * n_out}
        if x.dtype in (torch.float32, torch.float64):  # the DFT needs the precision
            freqs = (steps + k - 1) // 2 + 1
            # forward DFT of x, 3 products per frequency, inverse DFT
            costs["spectral"] = 2 * freqs * steps * n_in + 3 * freqs * n_in * n_out + 2 * freqs * out_steps * n_out
        return costs

    def _resolve_method(self, x: Tensor, used: list[int] | None = None) -> str:
        """The method to run; for "auto", the one with the fewest multiply-adds per batch element."""
        if self.method != "auto":
            return self.method
        costs = self._dense_costs(x)
        if self.form == "max":
            used = self.used_delays() if used is None else used
            costs["shift"] = max(len(used), 1) * x.shape[0] * self.in_features * self.out_features
        return min(costs, key=costs.get)

    def forward(self, x: Tensor) -> Tensor:
        """``[T, B, in] -> [T + ⌊(K-1)/2⌋, B, out]``: y_j[t] = Σ_i Σ_n k_ji[n] s_i[t + n - (K-1)] (+ b_j)."""
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"{self._label()}: input must have shape [T, B, {self.in_features}] (time-major), "
                f"got {list(x.shape)}"
            )
        if not x.is_floating_point():
            raise ShapeError(f"{self._label()}: input must be a floating-point tensor, got {x.dtype}")
        steps = x.shape[0]
        out_steps = steps + self.output_extension
        packed, counted = self._event_path(x, dense_macs=lambda: x.shape[1] * min(self._dense_costs(x).values()))
        if packed is not None:
            y = sparse_delays.deliver(x, packed, out_steps, counted)
            return y + self.bias.detach().to(x.dtype) if self.bias is not None else y
        taps = self.taps().to(x.dtype)
        # the delays in use are only needed to price or run "shift"
        needs_used = self.method == "shift" or (self.method == "auto" and self.form == "max")
        used = self.used_delays() if needs_used else None
        method = self._resolve_method(x, used)
        if method == "spectral":
            y = _delay_conv_spectral(x, taps, out_steps)
        elif method == "shift":
            y = _delay_shift(x, taps, out_steps, used)
        else:
            xb = F.pad(x.permute(1, 2, 0), (self.kernel_size - 1, self.output_extension))
            y = F.conv1d(xb, taps.permute(2, 1, 0).flip(-1)).permute(2, 0, 1).contiguous()
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y

    def extra_repr(self) -> str:
        s = (
            f"{self.in_features}, {self.out_features}, kernel_size={self.kernel_size}, form={self.form!r}, "
            f"method={self.method!r}"
        )
        s += "" if self.backend == "auto" else f", backend={self.backend!r}"
        return s + ("" if self.bias is not None else ", bias=False")

    # ------------------------------------------------------------------ inference: event-driven and streaming
    def _versions(self, dtype: torch.dtype) -> tuple:
        """What the cached inference forms depend on: the tensors' identity and version, the form, the dtype.
        (Read from the parameter dicts directly: this runs at every streamed step.)"""
        w, p, g = self._parameters["weight"], self._parameters["positions"], self._buffers["sigma"]
        return (self.form, dtype, w.data_ptr(), w._version, p.data_ptr(), p._version, g.data_ptr(), g._version)

    def _packed(self, dtype: torch.dtype) -> sparse_delays.Packed | None:
        """The synapses packed for the event-driven kernels (in ``dtype``), or None when the delays are not
        integer (σ ≠ 0, "gauss" form, or a position off the integers): then a synapse spreads over taps."""
        key = self._versions(dtype)
        hit = self._cache.get("packed")
        if hit is not None and hit[0] == key:
            return hit[1]
        packed = None
        with torch.no_grad():
            p = self.positions.detach()
            if (self.form == "max" and bool((self.sigma == 0).all()) and bool((p == p.round()).all())
                    and bool((p.abs() <= self.half_width).all()) and bool(torch.isfinite(self.weight).all())):
                packed = sparse_delays.pack(self.weight.detach().to(dtype), self.integer_delays(), self.kernel_size)
        self._cache["packed"] = (key, packed)
        return packed

    def _event_path(self, x: Tensor, dense_macs) -> tuple[sparse_delays.Packed | None, tuple | None]:
        """The packed synapses if this call runs event-driven (see ``backend``), else None, and the input's
        :func:`~neuromorph.kernels.sparse_delays.event_counts` if the price needed them (else None, and
        ``deliver`` counts what it needs); sets ``last_path``.

        ``dense_macs()``: the dense alternative's multiply-adds for this call (priced only under "auto")."""
        backend = self.backend
        if backend == "auto" and sparse._FORCED.get() is not None:
            backend = sparse._FORCED.get()
        if backend == "auto" and (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            backend = "dense"
        packed = counted = None
        if backend != "dense":
            params = self._parameters  # the dict, not Module.__getattr__: this runs at every streamed step
            needs_grad = torch.is_grad_enabled() and (
                x.requires_grad or any(t.requires_grad for t in params.values() if t is not None))
            why = None
            if needs_grad:
                why = "a gradient is needed (the event-driven path is for inference: use torch.no_grad())"
            elif not (x.device.type == "cpu" and params["weight"].device.type == "cpu"
                      and x.dtype in (torch.float32, torch.float64)):
                why = f"it runs on CPU float32/float64 tensors, got {x.dtype} on {x.device}"
            else:
                packed = self._packed(x.dtype)
                if packed is None:
                    why = "the delays are not integer (call round_delays() or evaluate inside rounded_delays())"
            if why is not None and backend == "sparse":
                raise ConfigError(f"{self._label()}: backend='sparse' cannot run here: {why}; use backend='auto' to "
                                  f"fall back to the dense evaluation")
            if packed is not None and backend == "auto":
                per_event = (packed.synapses / max(1, self.in_features) + EVENT_OVERHEAD) * EVENT_COST
                dense = dense_macs()
                # events are counted only if an input with no zero would not run event-driven anyway
                if x.numel() * per_event >= dense:
                    counted = sparse_delays.event_counts(x, packed)
                    if counted[0] * per_event >= dense:
                        packed = None
        self.__dict__["last_path"] = "dense" if packed is None else "sparse"  # plain attribute, no Module hooks
        return packed, counted

    def _dense_step_taps(self, dtype: torch.dtype) -> Tensor:
        """The taps as one ``[in, K·out]`` matrix (column d·out + j: delay d, output j) for the dense step;
        cached while nothing needs a gradient."""
        if torch.is_grad_enabled() and (self.weight.requires_grad or self.positions.requires_grad):
            return self.taps().to(dtype).permute(1, 0, 2).reshape(self.in_features, -1)
        key = self._versions(dtype)
        hit = self._cache.get("taps")
        if hit is None or hit[0] != key:
            with torch.no_grad():
                flat = self.taps().to(dtype).permute(1, 0, 2).reshape(self.in_features, -1).contiguous()
            hit = (key, flat)
            self._cache["taps"] = hit
        return hit[1]

    def stream(self, x: Tensor, state: "DelayState | None" = None) -> tuple[Tensor, "DelayState"]:
        """Run ``x [t, B, in]`` as the next ``t`` steps of a stream: returns ``(y [t, B, out], state)``.

        The state holds the delayed currents still on their way (a ring buffer ``[K, B, out]``) and the slot
        of the current step. Feeding a sequence in any split gives the first steps of :meth:`forward` on the
        whole sequence (its outputs for t < T; the later steps of forward's output are what feeding zeros
        gives). Event-driven under the same conditions as :meth:`forward` (no gradient, integer delays,
        ``backend``); else one ``[B, in] × [in, K·out]`` product per step with the taps (dense).
        """
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ShapeError(f"{self._label()}: a stream chunk must have shape [t, B, {self.in_features}], got "
                             f"{list(x.shape)}")
        batch = x.shape[1]
        if state is None:
            ring = torch.zeros(self.kernel_size, batch, self.out_features, dtype=x.dtype, device=x.device)
            state = DelayState(ring, 0)
        elif state.ring.shape[1] != batch:
            raise ShapeError(f"{self._label()}: the stream state holds a batch of {state.ring.shape[1]}, the input has "
                             f"batch {batch}; start a new stream (state=None)")
        k, n_out = self.kernel_size, self.out_features
        packed, _ = self._event_path(x, dense_macs=lambda: batch * self.in_features * k * n_out)
        if packed is not None and state.ring.dtype == x.dtype and not state.ring.requires_grad:
            y, head = sparse_delays.stream(x, packed, state.ring, state.head)
            state = DelayState(state.ring, head)
        else:
            self.__dict__["last_path"] = "dense"
            flat = self._dense_step_taps(x.dtype)
            ring, head, ys = state.ring.to(x.dtype), state.head, []
            for t in range(x.shape[0]):
                z = (x[t] @ flat).view(batch, k, n_out).transpose(0, 1)  # [K, B, out]: delay d lands d steps on
                ring = ring + torch.roll(z, head, 0)
                ys.append(ring[head])
                ring = ring.index_fill(0, torch.tensor([head], device=ring.device), 0.0)
                head = (head + 1) % k
            y = torch.stack(ys)
            state = DelayState(ring, head)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y, state


@dataclass
class DelayState:
    """A :class:`DelayedLinear`'s stream state: ``ring [K, B, out]``, slot ``(head + d) mod K`` holding the
    currents that arrive d steps after the current one, and ``head``, the current step's slot."""

    ring: Tensor
    head: int


@functools.lru_cache(maxsize=64)
def _dft_matrices(steps: int, k: int, out_steps: int, dtype: torch.dtype, device: torch.device):
    """Real DFT matrices of length N = steps + k - 1 (F = N//2 + 1 frequencies).

    Forward: X_f = Σ_t x_t e^{-2πi f t / N} as ``[cos; -sin]`` rows ``[2F, L]`` for L = steps and L = k.
    Inverse (irfft restricted to t < out_steps): y_t = (1/N) Σ_f c_f (Re Y_f cos(2π f t/N) - Im Y_f
    sin(2π f t/N)), c_0 = 1, c_{N/2} = 1 for even N, else 2. Angles from (f·t mod N) in float64.
    """
    n = steps + k - 1
    freqs = n // 2 + 1
    f = torch.arange(freqs, dtype=torch.int64)

    def forward(length: int) -> Tensor:
        ang = (2 * math.pi / n) * (torch.outer(f, torch.arange(length)) % n).to(torch.float64)
        return torch.cat([torch.cos(ang), -torch.sin(ang)]).to(dtype=dtype, device=device)

    c = torch.full((freqs,), 2.0, dtype=torch.float64)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    ang = (2 * math.pi / n) * (torch.outer(torch.arange(out_steps), f) % n).to(torch.float64)
    inv_re = (torch.cos(ang) * c / n).to(dtype=dtype, device=device)
    inv_im = (-torch.sin(ang) * c / n).to(dtype=dtype, device=device)
    return forward(steps), forward(k), inv_re, inv_im


class _GaussTaps(torch.autograd.Function):
    """Gaussian DCLS taps in delay order with a hand-written backward (4 passes over [K, in, out]
    instead of the ~15 autograd would make; the kernel is rebuilt at every forward).

    u_n = (n - c)/s with n = K-1-d, g = exp(-u²/2), q = g/(Σ_n g + 1e-7), taps = w q. Gradients:
    ∂L/∂w = Σ_n G_n q_n;  ∂L/∂c = (w/s) (Σ_n G_n q_n u_n - ū Σ_n G_n q_n) with ū = Σ_n q_n u_n
    (from ∂q_n/∂c = (q_n/s)(u_n - ū), exact also with the epsilon). s = |σ| + 0.27 gets no gradient:
    σ is a schedule, not a parameter.
    """

    @staticmethod
    def forward(ctx, weight: Tensor, centre: Tensor, sig: Tensor, k: int) -> Tensor:
        n = torch.arange(k - 1, -1, -1, device=centre.device, dtype=centre.dtype).view(k, 1, 1)
        u = (n - centre).div_(sig)  # [K, in, out]
        q = u.square().mul_(-0.5).exp_()
        q.div_(q.sum(0).add_(NORM_EPS))
        ctx.save_for_backward(weight, sig, u, q)
        return q * weight

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        weight, sig, u, q = ctx.saved_tensors
        gq = grad * q
        sum_gq = gq.sum(0)
        g_weight = sum_gq if ctx.needs_input_grad[0] else None
        g_centre = None
        if ctx.needs_input_grad[1]:
            u_bar = (q * u).sum(0)
            g_centre = weight / sig * (gq.mul_(u).sum(0) - u_bar * sum_gq)
        return g_weight, g_centre, None, None


def _delay_conv_spectral(x: Tensor, taps: Tensor, out_steps: int) -> Tensor:
    """y[t] = Σ_d x[t - d] @ taps[d] for t < out_steps (taps [K, in, out]), in the frequency domain.

    Circular convolution of length N = T + K - 1 has no wrap-around in the first ``out_steps`` (< N)
    outputs: a wrapped term would need x at an index ≥ N - (K-1) = T, where x is zero.
    """
    steps, batch, n_in = x.shape
    k, _, n_out = taps.shape
    fx, fw, inv_re, inv_im = _dft_matrices(steps, k, out_steps, x.dtype, x.device)
    freqs = inv_re.shape[1]
    taps = taps.reshape(k, n_in * n_out)  # row d = delay d
    xs = (fx @ x.reshape(steps, batch * n_in)).view(2, freqs, batch, n_in)  # Re, Im of X_f: [F, B, in]
    ws = (fw @ taps).view(2, freqs, n_in, n_out)  # Re, Im of W_f: [F, in, out]
    a, b, c, d = xs[0], xs[1], ws[0], ws[1]
    # (a + ib)(c + id) with 3 real products: k1 = (a+b)c, k2 = a(d-c), k3 = b(c+d); Re = k1-k3, Im = k1+k2
    # (bmm/mm keep their inputs for backward, not their outputs, so the in-place updates below are
    # safe under autograd and spare three [F, B, out] / [T', B, out] temporaries)
    k1 = torch.bmm(a + b, c)
    im = torch.bmm(a, d - c).add_(k1)
    re = k1.sub_(torch.bmm(b, c + d))
    y = (inv_re @ re.view(freqs, batch * n_out)).addmm_(inv_im, im.view(freqs, batch * n_out))
    return y.view(out_steps, batch, n_out)


def _delay_shift(x: Tensor, taps: Tensor, out_steps: int, delays: list[int]) -> Tensor:
    """y[t] = Σ_d x[t - d] @ taps[d] for t < out_steps, summed over ``delays`` only (one product each)."""
    steps, batch, n_in = x.shape
    n_out = taps.shape[2]
    flat = x.reshape(steps * batch, n_in)
    y = x.new_zeros(out_steps, batch, n_out) + 0.0 * taps[0, 0, 0]  # in the graph even if no delay is used
    for d in delays:
        n = min(steps, out_steps - d)
        if n > 0:
            y[d : d + n] += (flat[: n * batch] @ taps[d]).view(n, batch, n_out)
    return y


# ---------------------------------------------------------------------- model-level helpers
def delayed_layers(model: torch.nn.Module) -> list[DelayedLinear]:
    """Every :class:`DelayedLinear` in ``model`` (itself included), in ``modules()`` order."""
    return [m for m in model.modules() if isinstance(m, DelayedLinear)]


def clamp_positions(model: torch.nn.Module) -> None:
    """Clamp the positions of every DelayedLinear in ``model`` to ±⌊K/2⌋ (after each optimizer step)."""
    for layer in delayed_layers(model):
        layer.clamp_positions()


def clamp_after_step(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> RemovableHandle:
    """Make ``optimizer.step()`` clamp the delay positions of ``model`` right after each step.

    SNN-delays clamps after every optimizer step (``reset_model(train=True)``). Returns the hook handle
    (``.remove()`` undoes it).
    """
    return optimizer.register_step_post_hook(lambda *_: clamp_positions(model))


def round_delays(model: torch.nn.Module) -> dict[str, Tensor]:
    """Round every DelayedLinear in ``model`` to integer delays (see :meth:`DelayedLinear.round_delays`).

    Returns ``{qualified layer name: int64 delays [out, in]}``; permanent (for export and inference).
    """
    return {name: m.round_delays() for name, m in model.named_modules() if isinstance(m, DelayedLinear)}


@contextlib.contextmanager
def rounded_delays(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Evaluate with integer delays, then restore the real-valued positions, σ and form.

    SNN-delays evaluates with rounded delays at every evaluation, so its reported accuracies are for
    integer delays (Hammouamri et al., ICLR 2024); wrap evaluation in ``with rounded_delays(model): ...``.
    """
    saved = [(m, m.positions.detach().clone(), m.sigma.clone(), m.form) for m in delayed_layers(model)]
    try:
        for m, *_ in saved:
            m.round_delays()
        yield model
    finally:
        with torch.no_grad():
            for m, p, s, form in saved:
                m.positions.copy_(p)
                m.sigma.copy_(s)
                m.form = form


@dataclass(frozen=True)
class SigmaSchedule:
    """The σ schedule of SNN-delays (``decrease_sig``, Hammouamri et al., ICLR 2024).

    σ starts at ``sigma_init`` (⌊K/2⌋) and, at the end of each epoch while epoch < ``final_epoch``
    (⌊epochs/4⌋) and σ > ``sigma_final`` (0.23), is multiplied by α = (sigma_final/sigma_init)^(1/final_epoch).
    ``schedule(epochs_done)`` is σ after that many completed epochs: sigma_init·α^min(epochs_done,
    final_epoch), and exactly ``sigma_final`` from ``final_epoch`` on (σ_eff = 0.23 + 0.27 = 0.5). With
    final_epoch = 0, or sigma_init <= sigma_final, σ stays at sigma_init (the reference's constant-σ mode).
    """

    sigma_init: float
    final_epoch: int
    sigma_final: float = 0.23

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma_init) and self.sigma_init >= 0):
            raise ConfigError(f"SigmaSchedule: sigma_init={self.sigma_init!r} must be a finite number >= 0")
        if not (math.isfinite(self.sigma_final) and self.sigma_final > 0):
            raise ConfigError(f"SigmaSchedule: sigma_final={self.sigma_final!r} must be a finite number > 0")
        if isinstance(self.final_epoch, bool) or not isinstance(self.final_epoch, int) or self.final_epoch < 0:
            raise ConfigError(f"SigmaSchedule: final_epoch={self.final_epoch!r} must be an integer >= 0")

    @classmethod
    def for_training(cls, kernel_size: int, epochs: int) -> "SigmaSchedule":
        """The SNN-delays defaults: sigma_init = ⌊K/2⌋, final_epoch = ⌊epochs/4⌋ (SHD: 12 and 37)."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ConfigError(f"SigmaSchedule: epochs={epochs!r} must be an integer >= 0")
        return cls(sigma_init=float(kernel_size // 2), final_epoch=epochs // 4)

    @property
    def alpha(self) -> float:
        """Per-epoch factor α = (sigma_final / sigma_init)^(1/final_epoch) (1 when σ never shrinks)."""
        if self.final_epoch == 0 or self.sigma_init <= self.sigma_final:
            return 1.0
        return (self.sigma_final / self.sigma_init) ** (1.0 / self.final_epoch)

    def __call__(self, epochs_done: int) -> float:
        if epochs_done < 0:
            raise ConfigError(f"SigmaSchedule: epochs_done={epochs_done!r} must be >= 0")
        if self.alpha == 1.0:
            return float(self.sigma_init)
        if epochs_done >= self.final_epoch:
            return float(self.sigma_final)
        return float(self.sigma_init * self.alpha**epochs_done)

    def apply(self, model: torch.nn.Module, epochs_done: int) -> float:
        """Set σ = schedule(epochs_done) in every DelayedLinear of ``model``; returns that σ.

        Call once at the end of each epoch with the number of completed epochs (epoch index + 1).
        """
        sigma = self(epochs_done)
        for layer in delayed_layers(model):
            layer.set_sigma(sigma)
        return sigma
