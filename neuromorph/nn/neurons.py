"""Spiking neuron layers: thin modules that hold parameters and call the multi-step backends.

Every neuron takes a time-major ``[T, B, *features]`` sequence and returns the spikes of every step.
Neurons keep no state between calls (no ``reset_net`` to forget); ``streaming=True`` turns on online
inference, where ``forward(x, state)`` returns ``(spikes, state)`` and the state is passed back in.
Time constants are in steps, or in seconds when ``dt`` is given.

Layers whose parameters must stay in a range (the adaptive LIF's time constants and couplings) define
``apply_constraints()``, a projection onto that range that the training loop calls after every optimizer
step (:func:`apply_constraints`); the forward pass itself never clamps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
from torch import nn

from neuromorph import kernels
from neuromorph.errors import ConfigError, ShapeError, check_choice
from neuromorph.functional.neuron import check_sequence, check_threshold, tau_to_decay
from neuromorph.functional.surrogate import Surrogate, get_surrogate
from neuromorph.kernels.config import RESET_MODES, DynamicsConfig, DynamicsParams, NeuronState, has_compact_backward
from neuromorph.nn.protocol import LayerDecl, Role

Number = Union[float, Sequence[float], torch.Tensor]


@functools.lru_cache(maxsize=1024)
def _config(**kw) -> DynamicsConfig:
    """The (frozen, validated) configuration for these settings, built once: a layer asks on every call."""
    return DynamicsConfig(**kw)


@dataclass(frozen=True)
class NeuronSpec:
    """The hardware/exchange view of a neuron: everything an exporter or an energy model needs.

    Time constants are in steps (multiply by ``dt`` for seconds, when known). Unused fields are None.
    """

    kind: str  # "IF", "LIF", "ALIF", "CubaLIF", "LI", "SEAdLIF", "EFAdLIF"
    threshold: Optional[torch.Tensor]
    tau: Optional[torch.Tensor] = None  # membrane
    tau_syn: Optional[torch.Tensor] = None
    tau_adapt: Optional[torch.Tensor] = None
    adapt_increment: Optional[torch.Tensor] = None  # ALIF: threshold jump; adLIF: jump of w per spike (q·b)
    adapt_coupling: Optional[torch.Tensor] = None  # adLIF: sub-threshold coupling of w to the membrane (q·a)
    reset: str = "none"
    v_reset: float = 0.0
    reset_amount: Optional[float] = None
    decay_input: bool = False
    detach_reset: bool = False
    mpr: bool = False
    surrogate: Optional[Surrogate] = None
    dt: Optional[float] = None


def _as_tensor(value: Number) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().clone().to(torch.get_default_dtype()) if not value.is_floating_point() else value.detach().clone()
    return torch.as_tensor(value, dtype=torch.get_default_dtype())


def _describe(name: str, value: torch.Tensor) -> str:
    """``tau=5`` for a scalar, ``tau=per-neuron(4, 8)`` otherwise; ``(learned)`` for a parameter."""
    shown = f"{value.item():g}" if value.numel() == 1 and value.dim() == 0 else f"per-neuron{tuple(value.shape)}"
    return f"{name}={shown}" + (" (learned)" if isinstance(value, nn.Parameter) else "")


class SpikingNeuron(nn.Module):
    """Base of all neuron layers: parameters, validation, backend dispatch, streaming."""

    kind = "neuron"
    _fires = True

    def __init__(self, *, threshold: Number = 1.0, reset: str = "soft", v_reset: float = 0.0,
                 surrogate: Union[str, Surrogate] = "atan", alpha: Optional[float] = None, detach_reset: bool = False,
                 learn_threshold: bool = False, shape: Optional[Sequence[int]] = None, mpr: bool = False,
                 reset_amount: Optional[float] = None, backend: str = "auto", streaming: bool = False,
                 check_finite: bool = False, dt: Optional[float] = None, truncate: Optional[float] = None,
                 sparse_backward: Optional[bool] = None):
        super().__init__()
        check_choice("reset", reset, RESET_MODES)
        check_choice("backend", backend, kernels.BACKENDS)
        if dt is not None and not dt > 0:
            raise ConfigError(f"dt must be positive (seconds per step), got {dt!r}")
        self.reset = reset
        self.v_reset = float(v_reset)
        self.surrogate = get_surrogate(surrogate, alpha, truncate=truncate)
        self.sparse_backward = sparse_backward
        # the kernel's own rule, on the parts of the configuration it reads (firing, surrogate, MPR)
        if sparse_backward and not has_compact_backward(DynamicsConfig(surrogate=self.surrogate, mpr=bool(mpr),
                                                                        fire=self._fires)):
            raise ConfigError(f"{type(self).__name__}(surrogate={self.surrogate.name}): sparse_backward=True needs a "
                              f"surrogate with compact support (triangle, rectangular, mpr) or a truncated one "
                              f"(truncate=B); leave sparse_backward=None to run the input gradient densely")
        if sparse_backward and backend in ("reference", "triton"):
            raise ConfigError(f"{type(self).__name__}: sparse_backward=True runs with the fused CPU backend, not "
                              f"backend={backend!r}")
        self.detach_reset = bool(detach_reset)
        self.mpr = bool(mpr)
        self.reset_amount = None if reset_amount is None else float(reset_amount)
        self.backend = backend
        self.streaming = bool(streaming)
        self.check_finite = bool(check_finite)
        self.dt = dt
        self.shape = tuple(shape) if shape is not None else None
        if self._fires:
            self._register("threshold", check_threshold(self._expand(_as_tensor(threshold))), learn_threshold)

    # -- parameters ---------------------------------------------------------------------------------------
    def _expand(self, value: torch.Tensor) -> torch.Tensor:
        if self.shape is None:
            return value
        try:
            return torch.broadcast_to(value, self.shape).clone()
        except RuntimeError:
            raise ConfigError(f"{type(self).__name__}: parameter of shape {tuple(value.shape)} does not broadcast to "
                              f"shape={self.shape}") from None

    def _register(self, name: str, value: torch.Tensor, learn: bool) -> None:
        self.__dict__.setdefault("_neuron_params", []).append(name)  # shown by extra_repr
        if learn:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    def _time_constant(self, name: str, value: Number, learn: bool) -> None:
        tau = _as_tensor(value)
        if self.dt is not None:
            tau = tau / self.dt
        tau_to_decay(tau, name)  # validates
        self._register(name, self._expand(tau), learn)

    # -- dynamics ------------------------------------------------------------------------------------------
    def dynamics(self) -> tuple[DynamicsConfig, DynamicsParams]:
        """The backend-level description of this neuron."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state: Optional[NeuronState] = None):
        check_sequence(x, type(self).__name__ + " input", self.check_finite)
        if self.shape is not None and tuple(x.shape[2:]) != self.shape:
            raise ShapeError(f"{type(self).__name__}: expected features of shape {self.shape} after [T, B], "
                             f"got input of shape {tuple(x.shape)}")
        if state is not None and not self.streaming:
            raise ConfigError(f"{type(self).__name__}: a state was passed but streaming=False; construct the layer "
                              f"with streaming=True for online inference")
        cfg, params = self.dynamics()
        out, _, final = kernels.run(x, params, cfg, state, False, self.backend, active=self._records_active(x, cfg))
        return (out, final) if self.streaming else out

    def _records_active(self, x: torch.Tensor, cfg: DynamicsConfig) -> bool:
        """Whether the spikes carry their active set for the next synapse's sparse input gradient
        (``sparse_backward``: None = when possible, True = required, False = never)."""
        if self.sparse_backward is False or not torch.is_grad_enabled():
            return False
        from neuromorph.kernels import fused

        if not fused.active_supported(x, cfg) or kernels.resolve_backend(self.backend, x) != "fused":
            if self.sparse_backward:
                raise ConfigError(f"{type(self).__name__}: sparse_backward=True runs on CPU float32/float64 input "
                                  f"with the fused backend, got {x.dtype} on {x.device} (backend={self.backend!r})")
            return False
        return True

    def spec(self) -> NeuronSpec:
        raise NotImplementedError

    @property
    def layer_decl(self) -> LayerDecl:
        """Layer protocol: a neuron of this ``kind``; a readout when it never fires (LI)."""
        return LayerDecl(Role.NEURON if self._fires else Role.READOUT, self.kind)

    def extra_repr(self) -> str:
        """Parameters as passed (time constants in steps): scalars by value, per-neuron ones by shape."""
        names = getattr(self, "_neuron_params", [])
        parts = [_describe(n, getattr(self, n)) for n in sorted(names, key=lambda n: n == "threshold")]
        if hasattr(self, "decay_input"):
            parts.append(f"decay_input={self.decay_input}")
        if self._fires:
            parts.append(f"reset={self.reset!r}")
            if self.reset == "hard" and self.v_reset != 0.0:
                parts.append(f"v_reset={self.v_reset:g}")
            if self.reset_amount is not None:
                parts.append(f"reset_amount={self.reset_amount:g}")
            parts.append(f"surrogate={self.surrogate.name}({self.surrogate.alpha:g})")
        if self._fires and self.surrogate.truncate is not None:
            parts.append(f"truncate={self.surrogate.truncate:g}")
        if self.sparse_backward is not None:
            parts.append(f"sparse_backward={self.sparse_backward}")
        if self.detach_reset:
            parts.append("detach_reset=True")
        if self.mpr:
            parts.append("mpr=True")
        if self.dt is not None:
            parts.append(f"dt={self.dt:g}")
        if self.backend != "auto":
            parts.append(f"backend={self.backend!r}")
        if self.streaming:
            parts.append("streaming=True")
        return ", ".join(parts)

    def _cfg(self, **kw) -> DynamicsConfig:
        return _config(reset=self.reset, v_reset=self.v_reset, detach_reset=self.detach_reset,
                       surrogate=self.surrogate, mpr=self.mpr, reset_amount=self.reset_amount, **kw)

    def _spec(self, kind: str, **kw) -> NeuronSpec:
        return NeuronSpec(kind=kind, threshold=self.threshold.detach(), reset=self.reset, v_reset=self.v_reset,
                          reset_amount=self.reset_amount, detach_reset=self.detach_reset, mpr=self.mpr,
                          surrogate=self.surrogate, dt=self.dt, **kw)


class IF(SpikingNeuron):
    """Integrate-and-fire: h_t = v_{t−1} + x_t; s_t = H(h_t − θ); reset soft/hard/none.

    With ``threshold=0.5, reset="soft", reset_amount=1.0, mpr=True`` it is the neuron of Guo et al.
    (ECCV 2022): the MPR φ feeds the threshold test and the reset subtracts the spike
    amplitude 1.
    """

    kind = "IF"

    def dynamics(self):
        one = torch.ones((), dtype=self.threshold.dtype, device=self.threshold.device)
        return self._cfg(decay_input=False), DynamicsParams(one, self.threshold)

    def spec(self) -> NeuronSpec:
        return self._spec("IF")


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire (SpikingJelly's Euler form, time in steps):

    h_t = β v_{t−1} + c x_t with β = 1 − 1/τ, c = 1/τ if ``decay_input`` else 1; s_t = H(h_t − θ);
    soft reset v_t = h_t − s_t θ, hard v_t = h_t(1 − s_t) + v_reset s_t, none v_t = h_t.
    ``tau`` and ``threshold`` may be scalars or per-neuron (``shape``) and learnable.
    """

    kind = "LIF"

    def __init__(self, tau: Number = 2.0, threshold: Number = 1.0, reset: str = "soft", v_reset: float = 0.0,
                 decay_input: bool = True, detach_reset: bool = False, surrogate: Union[str, Surrogate] = "atan",
                 alpha: Optional[float] = None, learn_tau: bool = False, learn_threshold: bool = False,
                 shape: Optional[Sequence[int]] = None, mpr: bool = False, reset_amount: Optional[float] = None,
                 backend: str = "auto", streaming: bool = False, check_finite: bool = False,
                 dt: Optional[float] = None, truncate: Optional[float] = None,
                 sparse_backward: Optional[bool] = None):
        super().__init__(threshold=threshold, reset=reset, v_reset=v_reset, surrogate=surrogate, alpha=alpha,
                         detach_reset=detach_reset, learn_threshold=learn_threshold, shape=shape, mpr=mpr,
                         reset_amount=reset_amount, backend=backend, streaming=streaming,
                         check_finite=check_finite, dt=dt, truncate=truncate, sparse_backward=sparse_backward)
        self.decay_input = bool(decay_input)
        self._time_constant("tau", tau, learn_tau)

    def dynamics(self):
        return self._cfg(decay_input=self.decay_input), DynamicsParams(1 - 1 / self.tau, self.threshold)

    def spec(self) -> NeuronSpec:
        return self._spec("LIF", tau=self.tau.detach(), decay_input=self.decay_input)


class ALIF(SpikingNeuron):
    """Adaptive LIF: the threshold rises by ``adapt_increment`` per spike and decays back with ``tau_adapt``:
    θ_t = θ + a_{t−1}, a_t = (1 − 1/τ_a) a_{t−1} + b s_t (Bellec et al., NeurIPS 2018)."""

    kind = "ALIF"

    def __init__(self, tau: Number = 2.0, tau_adapt: Number = 20.0, adapt_increment: Number = 0.1,
                 threshold: Number = 1.0, reset: str = "soft", v_reset: float = 0.0, decay_input: bool = True,
                 detach_reset: bool = False, surrogate: Union[str, Surrogate] = "atan", alpha: Optional[float] = None,
                 learn_tau: bool = False, learn_threshold: bool = False, learn_adaptation: bool = False,
                 shape: Optional[Sequence[int]] = None, backend: str = "auto", streaming: bool = False,
                 check_finite: bool = False, dt: Optional[float] = None, truncate: Optional[float] = None,
                 sparse_backward: Optional[bool] = None):
        super().__init__(threshold=threshold, reset=reset, v_reset=v_reset, surrogate=surrogate, alpha=alpha,
                         detach_reset=detach_reset, learn_threshold=learn_threshold, shape=shape, backend=backend,
                         streaming=streaming, check_finite=check_finite, dt=dt, truncate=truncate,
                         sparse_backward=sparse_backward)
        self.decay_input = bool(decay_input)
        self._time_constant("tau", tau, learn_tau)
        self._time_constant("tau_adapt", tau_adapt, learn_adaptation)
        inc = self._expand(_as_tensor(adapt_increment))
        if not torch.isfinite(inc).all() or (inc < 0).any():
            raise ConfigError(f"adapt_increment must be >= 0 and finite, got {inc}")
        self._register("adapt_increment", inc, learn_adaptation)

    def dynamics(self):
        return (self._cfg(decay_input=self.decay_input, alif=True),
                DynamicsParams(1 - 1 / self.tau, self.threshold, rho=1 - 1 / self.tau_adapt, adapt=self.adapt_increment))

    def spec(self) -> NeuronSpec:
        return self._spec("ALIF", tau=self.tau.detach(), tau_adapt=self.tau_adapt.detach(),
                          adapt_increment=self.adapt_increment.detach(), decay_input=self.decay_input)


class CubaLIF(SpikingNeuron):
    """Current-based LIF, the Loihi neuron: i_t = (1 − 1/τ_syn) i_{t−1} + x_t,
    h_t = (1 − 1/τ_mem) v_{t−1} + i_t, s_t = H(h_t − θ), hard reset to ``v_reset`` by default."""

    kind = "CubaLIF"

    def __init__(self, tau_mem: Number = 2.0, tau_syn: Number = 2.0, threshold: Number = 1.0, reset: str = "hard",
                 v_reset: float = 0.0, decay_input: bool = False, detach_reset: bool = False,
                 surrogate: Union[str, Surrogate] = "atan", alpha: Optional[float] = None, learn_tau: bool = False,
                 learn_threshold: bool = False, shape: Optional[Sequence[int]] = None, backend: str = "auto",
                 streaming: bool = False, check_finite: bool = False, dt: Optional[float] = None,
                 truncate: Optional[float] = None, sparse_backward: Optional[bool] = None):
        super().__init__(threshold=threshold, reset=reset, v_reset=v_reset, surrogate=surrogate, alpha=alpha,
                         detach_reset=detach_reset, learn_threshold=learn_threshold, shape=shape, backend=backend,
                         streaming=streaming, check_finite=check_finite, dt=dt, truncate=truncate,
                         sparse_backward=sparse_backward)
        self.decay_input = bool(decay_input)
        self._time_constant("tau_mem", tau_mem, learn_tau)
        self._time_constant("tau_syn", tau_syn, learn_tau)

    @property
    def tau(self) -> torch.Tensor:
        return self.tau_mem

    def dynamics(self):
        return (self._cfg(decay_input=self.decay_input, cuba=True),
                DynamicsParams(1 - 1 / self.tau_mem, self.threshold, syn_decay=1 - 1 / self.tau_syn))

    def spec(self) -> NeuronSpec:
        return self._spec("CubaLIF", tau=self.tau_mem.detach(), tau_syn=self.tau_syn.detach(),
                          decay_input=self.decay_input)


class LI(SpikingNeuron):
    """Leaky integrator, the non-spiking readout: v_t = β v_{t−1} + c x_t; returns the membrane ``[T, B, ...]``."""

    kind = "LI"
    _fires = False

    def __init__(self, tau: Number = 2.0, decay_input: bool = True, learn_tau: bool = False,
                 shape: Optional[Sequence[int]] = None, backend: str = "auto", streaming: bool = False,
                 check_finite: bool = False, dt: Optional[float] = None):
        super().__init__(reset="none", shape=shape, backend=backend, streaming=streaming, check_finite=check_finite,
                         dt=dt)
        self.decay_input = bool(decay_input)
        self._time_constant("tau", tau, learn_tau)

    def dynamics(self):
        one = torch.ones((), dtype=self.tau.dtype, device=self.tau.device)
        return (DynamicsConfig(reset="none", decay_input=self.decay_input, fire=False),
                DynamicsParams(1 - 1 / self.tau, one))

    def spec(self) -> NeuronSpec:
        return NeuronSpec(kind="LI", threshold=None, tau=self.tau.detach(), decay_input=self.decay_input, dt=self.dt)


class AdLIF(SpikingNeuron):
    """Adaptive LIF with an adaptation current (Baronig, Ferrand, Sabathiel & Legenstein, Nat Commun 2025), the
    common base of :class:`SEAdLIF` and :class:`EFAdLIF`. Per step, with I_t the input::

        ũ_t = α u_{t−1} + (1 − α)(I_t − w_{t−1})        α = exp(−1/τ_u)
        z_t = H(ũ_t − ϑ)                                  (strict)
        u_t = ũ_t (1 − sg(z_t))                           (hard reset to 0, no gradient through the reset)
        w_t = β w_{t−1} + (1 − β) q (a u + b z)           β = exp(−1/τ_w)

    where (u, z) are the new values (u_t, z_t) for the symplectic-Euler SE-adLIF and the previous ones
    (u_{t−1}, z_{t−1}) for the Euler-forward EF-adLIF. Per neuron and learnable: τ_u = w_u τ_u,max +
    (1 − w_u) τ_u,min and τ_w likewise (w_u, w_w initialised U[0, 1]), ``a`` (U[0, 1]) and ``b`` (U[0, 2]).
    Their ranges, w_u, w_w, a ∈ [0, 1] and b ∈ [0, 2], are kept by :meth:`apply_constraints`, which the
    training loop calls after each optimizer step. Time constants are in steps (in seconds with ``dt``).
    The default surrogate is SLAYER's exponential (α = 5, c = 0.4).
    """

    kind = "adLIF"
    scheme = "se"
    default_q = 120.0
    updates_per_step = 2  # membrane and adaptation current: the energy report charges both

    def __init__(self, features: int, tau_u_range: Sequence[float] = (5.0, 25.0),
                 tau_w_range: Sequence[float] = (60.0, 300.0), q: Optional[float] = None, threshold: Number = 1.0,
                 surrogate: Union[str, Surrogate] = "slayer_exp", alpha: Optional[float] = None,
                 scale: Optional[float] = None, backend: str = "auto", streaming: bool = False,
                 check_finite: bool = False, dt: Optional[float] = None):
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ConfigError(f"{type(self).__name__}: features={features!r} must be a positive integer")
        super().__init__(threshold=threshold, reset="hard", v_reset=0.0, detach_reset=True,
                         surrogate=get_surrogate(surrogate, alpha, scale), shape=(features,), backend=backend,
                         streaming=streaming, check_finite=check_finite, dt=dt)
        self.features = features
        self.q = float(self.default_q if q is None else q)
        if not math.isfinite(self.q) or self.q < 0:
            raise ConfigError(f"{type(self).__name__}: q={q!r} must be a finite number >= 0")
        self.tau_u_range = self._range("tau_u_range", tau_u_range)
        self.tau_w_range = self._range("tau_w_range", tau_w_range)
        self._register("w_u", torch.rand(features), True)
        self._register("w_w", torch.rand(features), True)
        self._register("a", torch.rand(features), True)
        self._register("b", 2 * torch.rand(features), True)

    def _range(self, name: str, value: Sequence[float]) -> tuple[float, float]:
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"{type(self).__name__}: {name}={value!r} must be a pair (min, max)") from None
        if self.dt is not None:
            lo, hi = lo / self.dt, hi / self.dt
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
            raise ConfigError(f"{type(self).__name__}: {name}={value!r} must satisfy 0 < min <= max (in steps, or "
                              f"seconds with dt)")
        return lo, hi

    @property
    def tau_u(self) -> torch.Tensor:
        """Membrane time constants in steps, ``[features]``."""
        lo, hi = self.tau_u_range
        return self.w_u * hi + (1 - self.w_u) * lo

    @property
    def tau_w(self) -> torch.Tensor:
        """Adaptation time constants in steps, ``[features]``."""
        lo, hi = self.tau_w_range
        return self.w_w * hi + (1 - self.w_w) * lo

    def apply_constraints(self) -> None:
        """Project the parameters onto their ranges in place: w_u, w_w, a ∈ [0, 1], b ∈ [0, 2]."""
        with torch.no_grad():
            for p, hi in ((self.w_u, 1.0), (self.w_w, 1.0), (self.a, 1.0), (self.b, 2.0)):
                p.clamp_(0.0, hi)

    def dynamics(self):
        cfg = DynamicsConfig(reset=self.reset, v_reset=self.v_reset, detach_reset=self.detach_reset,
                             surrogate=self.surrogate, decay_input=True, adlif=self.scheme)
        return cfg, DynamicsParams(torch.exp(-1 / self.tau_u), self.threshold, rho=torch.exp(-1 / self.tau_w),
                                   adapt=self.q * self.b, couple=self.q * self.a)

    def spec(self) -> NeuronSpec:
        return self._spec(self.kind, tau=self.tau_u.detach(), tau_adapt=self.tau_w.detach(),
                          adapt_increment=(self.q * self.b).detach(), adapt_coupling=(self.q * self.a).detach(),
                          decay_input=True)

    def extra_repr(self) -> str:
        return (f"{self.features}, tau_u_range={self.tau_u_range}, tau_w_range={self.tau_w_range}, q={self.q:g}, "
                + super().extra_repr())


class SEAdLIF(AdLIF):
    """Symplectic-Euler adaptive LIF (SE-adLIF): the adaptation current integrates the new, post-reset membrane
    and the current spike, which keeps the sub-threshold dynamics stable for any coupling a (see
    :class:`AdLIF`). Default q = 120."""

    kind = "SEAdLIF"
    scheme = "se"
    default_q = 120.0


class EFAdLIF(AdLIF):
    """Euler-forward adaptive LIF (EF-adLIF), SE-adLIF's baseline: the adaptation current integrates the
    previous step's membrane and spike (see :class:`AdLIF`). Default q = 60."""

    kind = "EFAdLIF"
    scheme = "ef"
    default_q = 60.0


def apply_constraints(model: nn.Module) -> None:
    """Call ``apply_constraints()`` on every module of ``model`` that defines one (the projection after an
    optimizer step; the training loop does this after each step)."""
    for m in model.modules():
        fn = getattr(m, "apply_constraints", None)
        if callable(fn):
            fn()
