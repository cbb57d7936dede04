"""The one definition of every neuron dynamics: per-element step, its adjoint, the surrogate derivatives.

Each function below is written once, in a small backend-neutral subset of Python: arithmetic, ``if`` on
*static flags* (``CUBA``, ``ALIF``, ``ADLIF``, ``FIRE``, ``RESET``, ``DECAY_INPUT``, ``MPR``, ``THR_RESET``,
``DETACH``, the surrogate's truncation ``TRUNC``, and the slot flags ``CARRY_I``/``CARRY_A``)
and on the surrogate id ``sid`` (an argument: Triton passes it as a constexpr, numba as a number, so
that one compiled numba loop serves every surrogate), and a handful of primitives (``where``, ``exp``,
``absv``, ``tanh``, ``sech2``, ``cbrt``, ``minimum``, ``maximum``). None of these names is defined here:
:func:`bind` re-creates the functions with the names bound for one backend and one configuration, as
SpikingJelly generates its CUDA kernels from one template per neuron:

- torch (:data:`TORCH_OPS`): the functions run on tensors; ``functional.surrogate`` and ``functional.mpr``
  and the device-agnostic fused backend use this binding;
- numba (``kernels.fused``): scalar primitives, each function ``njit``-ed, flags frozen as compile-time
  constants so every configuration compiles to its own branch-free loop;
- Triton (``kernels.triton``): block primitives, each function ``triton.jit``-ed, flags as ``tl.constexpr``.

The backends only walk time (forward: t = 0..T−1, adjoint: T−1..0), load, store and call :func:`step` /
:func:`adjoint`; they do not repeat a formula. ``kernels.reference`` is deliberately *not* built from this
module: it is the independent ground truth (plain autograd through its own recursion) that every backend is
tested against. ``one``/``zero`` are passed in so that numba keeps the data's precision (a Python float
literal would promote float32 to float64 and change which spikes fire).

Per step (time in steps; SpikingJelly/Loihi conventions)::

    i_t = κ i_{t-1} + x_t                       (cuba, κ = syn_decay; else i_t := x_t)
    h_t = β v_{t-1} + (1 - β) v_rest + c i_t    c = 1 - β if decay_input else 1
    θ_t = θ + a_{t-1}                           (alif; else θ_t := θ)
    s_t = H(h_t - θ_t)   or  H(φ(h_t) - θ_t) with mpr
    v_t = h_t - s̃_t R_t                         soft, R_t = θ_t (or reset_amount)
    v_t = h_t (1 - s̃_t) + v_reset s̃_t           hard
    v_t = h_t                                   none
    a_t = ρ a_{t-1} + b s_t                     (alif)

adLIF (``adlif="se"`` or ``"ef"``) reuses the slot ``a`` for the adaptation current w, which is subtracted
from the input instead of raising the threshold; ``couple`` is its sub-threshold coupling A (= q·a) and
``adapt`` its spike-triggered jump B (= q·b), ρ = exp(−Δt/τ_w)::

    h_t = β v_{t-1} + (1 - β) v_rest + c (y_t − w_{t-1})
    w_t = ρ w_{t-1} + (1 − ρ)(A v_t + B s_t)            SE (symplectic Euler: the new, post-reset v_t and s_t)
    w_t = ρ w_{t-1} + (1 − ρ)(A v_{t-1} + B s_{t-1})    EF (Euler forward; s_{t-1} is carried in the slot i)

with s̃ = sg(s) when ``detach_reset``. Without ``fire`` (leaky integrator) there are no spikes and
v_t = h_t is the output. The adjoint walks back with dv (of v_t), di (of i_t) and da (of a_t)::

    ds  = ∂L/∂s_t + b·da                               (alif)
    dh  = dv          (soft/none) ;  dv·(1 − s)        (hard)
    ds += −R·dv       (soft)      ;  (v_reset − h)·dv  (hard)      unless detach_reset
    dθ_t = −s·dv (soft, R = θ_t) − g·ds ;  dh += g·ds              g = surrogate′(h − θ_t)
    da ← ρ·da + dθ_t ; dρ += da·a_{t-1} ; db += da·s_t             (alif)
    dβ += dh·(v_{t-1} − v_rest − [decay_input]·y_t) ; dv ← β·dh ; dy = c·dh
    di = dy + κ·di ; dκ += di·i_{t-1} ; dx_t = di                 (cuba; else dx_t = dy)

and for adLIF, with ω = (1 − ρ)·dw (dw the adjoint of w_t, carried in ``da``)::

    SE:  dv_t += A·ω ; ds += B·ω ; dρ += dw·(w_{t-1} − A v_t − B s_t) ; dA += ω v_t ; dB += ω s_t
    EF:  ds += di (s_t is carried) ; dv_{t-1} += A·ω ; di ← B·ω ; dρ += dw·(w_{t-1} − A v_{t-1} − B s_{t-1})
    dw_{t-1} = ρ·dw − dy                                           (the input saw y_t − w_{t-1})

**Adding a neuron model** touches this module plus its tests (and the ``nn`` layer that exposes it):
give it a flag in :class:`DynamicsConfig` (and :func:`static_flags`), its parameters in
:class:`DynamicsParams`, its terms in :func:`step` and :func:`adjoint` under ``if FLAG:``, then add its
configuration to ``tests/kernels/test_backends_equal_reference.py`` and its recursion to
``kernels/reference.py`` (the independent check). Every backend picks the new terms up from here. A model
with a state variable beyond ``v, i, a`` or a parameter beyond the six slots of :class:`DynamicsParams` also
needs that slot added where the backends load and store state (the element helpers of ``kernels/fused.py``,
which the recurrent kernel shares, and ``kernels/triton.py``); a model that reuses a slot says so in :func:`static_flags` (``CARRY_I``,
``CARRY_A``), as the adLIF does.
"""

from __future__ import annotations

import builtins
import hashlib
import inspect
import math
import types
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional

import torch

from neuromorph.errors import ConfigError, check_choice

#: surrogate ids (the ``sid`` argument); the shapes are tabulated in :mod:`neuromorph.functional.surrogate`
SURROGATE_IDS = {"atan": 0, "sigmoid": 1, "fast_sigmoid": 2, "triangle": 3, "rectangular": 4, "mpr": 5,
                 "slayer_exp": 6}
ADLIF_IDS = {None: 0, "se": 1, "ef": 2}
RESET_MODES = ("soft", "hard", "none")
RESET_IDS = {"none": 0, "soft": 1, "hard": 2}
#: the surrogates whose derivative is zero outside a bounded window (|x| < α, |x| < α/2, |x| ≤ ½)
COMPACT_SURROGATES = ("triangle", "rectangular", "mpr")
TRUNC_UNIT = 2.0 ** -20  # the grid of Surrogate.truncate (TRUNC · TRUNC_UNIT is exact in float32)
TRUNC_MAX = 8.0


# ----------------------------------------------------------------------------------------------------------
# the description of a dynamics: surrogate, static configuration, tensor parameters, state
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Surrogate:
    """A named surrogate shape with its slope/width ``alpha`` and a height factor ``scale`` that multiplies
    the derivative (SLAYER's ``c``; 1 for the others) (resolve names with
    :func:`neuromorph.functional.surrogate.get_surrogate`)."""

    name: str = "atan"
    alpha: float = 2.0
    scale: float = 1.0
    #: cut the derivative to zero where |x| ≥ truncate (S3GD's B_th), giving any shape compact support;
    #: rounded to a multiple of 2⁻²⁰ (exact in float32, so every backend compares against the same value)
    truncate: Optional[float] = None

    def __post_init__(self):
        if not math.isfinite(self.alpha) or self.alpha <= 0:
            raise ConfigError(f"surrogate alpha must be a positive finite number, got {self.alpha!r} for {self.name!r}")
        if not math.isfinite(self.scale) or self.scale <= 0:
            raise ConfigError(f"surrogate scale must be a positive finite number, got {self.scale!r} for {self.name!r}")
        if self.truncate is not None:
            if not (isinstance(self.truncate, (int, float)) and TRUNC_UNIT <= self.truncate <= TRUNC_MAX):
                raise ConfigError(f"surrogate truncate must be a number in [2**-20, {TRUNC_MAX:g}] (the half-width "
                                  f"|u - threshold| beyond which the derivative is cut), got {self.truncate!r}")
            object.__setattr__(self, "truncate", round(self.truncate / TRUNC_UNIT) * TRUNC_UNIT)

    @property
    def id(self) -> int:
        return SURROGATE_IDS[self.name]

    @property
    def trunc_code(self) -> int:
        """``truncate`` in units of 2⁻²⁰ (0: not truncated), the static flag ``TRUNC`` of the definitions."""
        return 0 if self.truncate is None else round(self.truncate / TRUNC_UNIT)

    @property
    def compact(self) -> bool:
        """Whether the derivative vanishes outside a bounded window (triangle, rectangular, mpr, or any shape
        with ``truncate``): then only the neurons near threshold pass gradient (the sparse backward)."""
        return self.name in COMPACT_SURROGATES or self.truncate is not None

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate derivative dH/dx evaluated at ``x = u - threshold`` (:func:`surrogate_grad`)."""
        one = torch.ones((), dtype=x.dtype, device=x.device)
        defs = torch_definitions({**POINTWISE_FLAGS, "TRUNC": self.trunc_code})
        return self.scale * defs.surrogate_grad(x, self.alpha, self.id, one, 0 * one)


@dataclass(frozen=True)
class DynamicsConfig:
    """Static (non-tensor) description of one neuron model's multi-step dynamics (see the module docstring
    for the equations)."""

    reset: str = "soft"
    v_reset: float = 0.0
    v_rest: float = 0.0
    decay_input: bool = True
    detach_reset: bool = False
    surrogate: Surrogate = field(default_factory=Surrogate)
    mpr: bool = False
    mpr_k: float = 3.0
    reset_amount: Optional[float] = None
    cuba: bool = False
    alif: bool = False
    fire: bool = True
    adlif: Optional[str] = None  # "se" (symplectic Euler) or "ef" (Euler forward) adaptive LIF

    def __post_init__(self):
        check_choice("reset", self.reset, RESET_MODES)
        if self.reset_amount is not None and self.reset != "soft":
            raise ConfigError("reset_amount applies only to reset='soft'")
        if self.adlif is not None:
            check_choice("adlif", self.adlif, ("se", "ef"))
            if self.cuba or self.alif or self.mpr or not self.fire:
                raise ConfigError("adlif combines with neither cuba, alif, mpr nor fire=False")


class DynamicsParams(NamedTuple):
    """Tensor parameters, each broadcastable to the feature shape ``x.shape[2:]``."""

    beta: torch.Tensor  # membrane decay (1 - 1/tau); 1 for IF
    threshold: torch.Tensor
    syn_decay: Optional[torch.Tensor] = None  # synaptic current decay κ = 1 - 1/tau_syn (cuba)
    rho: Optional[torch.Tensor] = None  # adaptation decay (alif)
    adapt: Optional[torch.Tensor] = None  # threshold increment per spike (alif); jump B of w per spike (adlif)
    couple: Optional[torch.Tensor] = None  # sub-threshold coupling A of w to v (adlif)


class NeuronState(NamedTuple):
    """Per-neuron state ``[B, *features]``; unused parts are None. For adLIF ``a`` is the adaptation
    current w, and for EF-adLIF ``i`` is the previous step's spike."""

    v: torch.Tensor
    i: Optional[torch.Tensor] = None
    a: Optional[torch.Tensor] = None


def static_flags(cfg: DynamicsConfig, adjoint: bool = True) -> dict:
    """The compile-time flags of ``cfg`` that the definitions below branch on. The forward does not
    depend on ``detach_reset``, so ``adjoint=False`` leaves it at a fixed value."""
    return {"CUBA": bool(cfg.cuba), "ALIF": bool(cfg.alif), "FIRE": bool(cfg.fire), "RESET": RESET_IDS[cfg.reset],
            "DECAY_INPUT": bool(cfg.decay_input), "MPR": bool(cfg.mpr), "THR_RESET": cfg.reset_amount is None,
            "DETACH": bool(cfg.detach_reset) if adjoint else False, "ADLIF": ADLIF_IDS[cfg.adlif],
            # which state slots the backends load and store: i (cuba's current, EF's last spike), a (alif, adlif)
            "CARRY_I": bool(cfg.cuba) or cfg.adlif == "ef", "CARRY_A": bool(cfg.alif) or cfg.adlif is not None,
            # the surrogate's truncation in units of 2**-20 (0: none); an integer so that names stay unique
            "TRUNC": cfg.surrogate.trunc_code if adjoint else 0}


# ----------------------------------------------------------------------------------------------------------
# the definitions (names in CAPITALS and the primitives are bound by `bind`)
# ----------------------------------------------------------------------------------------------------------
# (linters see undefined names here: the flags and primitives are bound per backend by `bind`)
def surrogate_grad(x, a, sid, one, zero):
    """dH/dx of surrogate ``sid`` (:data:`SURROGATE_IDS`) with slope/width ``a`` at ``x = u − θ`` (the table
    is in :mod:`neuromorph.functional.surrogate`)."""
    if sid == 0:  # atan
        z = 0.5 * 3.141592653589793 * a * x
        g = (0.5 * a) / (one + z * z)
    elif sid == 1:  # sigmoid
        sg = one / (one + exp(-a * x))
        g = a * sg * (one - sg)
    elif sid == 2:  # fast sigmoid (SuperSpike)
        d = one + a * absv(x)
        g = one / (d * d)
    elif sid == 3:  # triangle
        g = maximum(one - absv(x) / a, zero) / a
    elif sid == 4:  # rectangular
        g = where(absv(x) < 0.5 * a, one / a, zero)
    elif sid == 5:  # mpr bump
        g = where(absv(x) <= 0.5, a / (2.0 * tanh(0.5 * a)) * sech2(a * x), zero)
    else:  # slayer_exp (SLAYER's exponential; its height factor c is the surrogate's scale)
        g = 0.5 * a * exp(-a * absv(x))
    if TRUNC:  # Surrogate.truncate: zero where |x| >= TRUNC · 2**-20
        g = where(absv(x) < TRUNC * 9.5367431640625e-07, g, zero)
    return g


def phi(u, k, one):
    """The Membrane Potential Rectifier φ(u) (functional.mpr); every branch is evaluated on clamped input
    so that none produces NaN where it is not selected. One cube root serves both outer branches: of 1 − u
    below 0, of u above 1 (of 1 in between), the same value each branch took its own root of before (a
    cube root is a library call the compiled loops cannot vectorise)."""
    c = cbrt(where(u < 0.0, one - u, maximum(u, one)))
    mid = 0.5 + tanh(k * (minimum(maximum(u, 0.0), 1.0) - 0.5)) / (2.0 * tanh(0.5 * k))
    return where(u < 0.0, one - c, where(u > 1.0, c, mid))


def phi_grad(u, k, one):
    """φ′(u): (1/3)·c^−2 on both outer branches, with the one cube root c of :func:`phi`."""
    c = cbrt(where(u < 0.0, one - u, maximum(u, one)))
    outer = (1.0 / 3.0) / (c * c)
    mid = k / (2.0 * tanh(0.5 * k)) * sech2(k * (minimum(maximum(u, 0.0), 1.0) - 0.5))
    return where(u < 0.0, outer, where(u > 1.0, outer, mid))


def threshold(th0, a):
    """θ_t = θ + a_{t−1} (alif) or θ."""
    th = th0
    if ALIF:
        th = th0 + a
    return th


def fire(h, th, k, one, zero):
    """(u, s): the value the threshold test sees (φ(h) with MPR, else h) and s = H(u − θ)."""
    u = h
    if MPR:
        u = phi(h, k, one)
    return u, where(u - th > 0.0, one, zero)


def after_reset(h, s, th, v_reset, ramount, one):
    """v_t from h_t and s_t."""
    v = h
    if RESET == 1:
        if THR_RESET:
            v = h - s * th
        else:
            v = h - s * ramount
    elif RESET == 2:
        v = h * (one - s) + v_reset * s
    return v


def membrane_after(h, th, k, v_reset, ramount, one, zero):
    """v_t recomputed from the saved pre-reset h_t (what the adjoint needs of the previous step)."""
    v = h
    if FIRE:
        u, s = fire(h, th, k, one, zero)
        v = after_reset(h, s, th, v_reset, ramount, one)
    return v


def step(y, v, i, a, beta, th0, syn_decay, rho, adapt, couple, v_rest, v_reset, ramount, k, one, zero):
    """One forward step: returns ``(out, h, v, i, a)``; out is s_t (the membrane without FIRE), h the
    pre-reset membrane the adjoint needs."""
    if CUBA:
        i = syn_decay * i + y
        y = i
    if ADLIF:
        y = y - a
    c = one
    if DECAY_INPUT:
        c = one - beta
    h = beta * v + (one - beta) * v_rest + c * y
    out = h
    vprev = v
    v = h
    if FIRE:
        th = threshold(th0, a)
        u, s = fire(h, th, k, one, zero)
        v = after_reset(h, s, th, v_reset, ramount, one)
        if ALIF:
            a = rho * a + adapt * s
        if ADLIF == 1:
            a = rho * a + (one - rho) * (couple * v + adapt * s)
        elif ADLIF == 2:
            a = rho * a + (one - rho) * (couple * vprev + adapt * i)
            i = s
        out = s
    return out, h, v, i, a


def beta_term(vprev, y, aprev, v_rest):
    """∂h_t/∂β = v_{t−1} − v_rest − [decay_input]·(y_t − [adlif] w_{t−1})."""
    d = vprev - v_rest
    if DECAY_INPUT:
        if ADLIF:
            y = y - aprev
        d = d - y
    return d


def adjoint(gs, dv, di, da, h, aprev, dterm, iprev, vprev, beta, th0, syn_decay, rho, adapt, couple, v_reset,
            ramount, k, salpha, sscale, sid, one, zero):
    """One backward step of :func:`step`: from ∂L/∂out_t (``gs``), the carried adjoints dv (already
    including ∂L/∂v_t of the membrane output), di, da and what the forward saved (``iprev`` is i_{t−1},
    ``vprev`` v_{t−1}, needed by EF-adLIF), return ``(dx_t, dv, di, da, dβ_t, dθ_t, dκ_t, dρ_t, db_t, dA_t)``
    (the parameter terms of this step)."""
    dh = dv + gs
    gthr = zero
    grho = zero
    gadapt = zero
    gcouple = zero
    dvback = zero
    if FIRE:
        th = threshold(th0, aprev)
        u, s = fire(h, th, k, one, zero)
        ds = gs
        if ALIF:
            ds = ds + adapt * da
        if ADLIF == 1:
            vpost = after_reset(h, s, th, v_reset, ramount, one)
            om = (one - rho) * da
            dv = dv + couple * om
            ds = ds + adapt * om
            grho = da * (aprev - couple * vpost - adapt * s)
            gcouple = om * vpost
            gadapt = om * s
            da = rho * da
        elif ADLIF == 2:
            ds = ds + di
            om = (one - rho) * da
            grho = da * (aprev - couple * vprev - adapt * iprev)
            gcouple = om * vprev
            gadapt = om * iprev
            dvback = couple * om
            di = adapt * om
            da = rho * da
        dth = zero
        dh = dv
        if RESET == 1:
            if THR_RESET:
                if not DETACH:
                    ds = ds - th * dv
                dth = dth - s * dv
            else:
                if not DETACH:
                    ds = ds - ramount * dv
        elif RESET == 2:
            dh = dv * (one - s)
            if not DETACH:
                ds = ds + (v_reset - h) * dv
        if MPR:
            ind = where((u >= 0.0) & (u <= 1.0), one, zero)
            dh = dh + ind * phi_grad(h, k, one) * ds
            dth = dth - ind * ds
        else:
            g = sscale * surrogate_grad(h - th, salpha, sid, one, zero)
            dh = dh + g * ds
            dth = dth - g * ds
        gthr = dth
        if ALIF:
            grho = da * aprev
            gadapt = da * s
            da = rho * da + dth
    gbeta = dh * dterm
    dv = beta * dh + dvback
    dy = dh
    if DECAY_INPUT:
        dy = (one - beta) * dh
    dx = dy
    if ADLIF:
        da = da - dy
    gsyn = zero
    if CUBA:
        dx = dy + di
        gsyn = dx * iprev
        di = syn_decay * dx
    return dx, dv, di, da, gbeta, gthr, gsyn, grho, gadapt, gcouple


DEFINITIONS = (surrogate_grad, phi, phi_grad, threshold, fire, after_reset, membrane_after, step, beta_term, adjoint)
PRIMITIVES = ("where", "exp", "absv", "tanh", "sech2", "cbrt", "minimum", "maximum")

#: a fingerprint of this definition, for backends that cache compiled code on disk (numba): a cached kernel
#: built from an older definition must never be loaded
SOURCE_HASH = hashlib.sha1(inspect.getsource(inspect.getmodule(step)).encode()).hexdigest()[:12]


def typed_literals(fn: types.FunctionType, literal: Callable, ns: Optional[dict] = None) -> types.FunctionType:
    """``fn`` with each float literal of its code replaced by ``literal(value)``, in namespace ``ns`` (its
    own globals if None).

    A compiler that types a Python float as float64 (numba) would otherwise compute ``0.5 * a * x`` in
    double precision on float32 data: besides rounding differently from torch's float32 arithmetic, the
    conversions keep the loops from vectorising (several times slower)."""
    consts = tuple(literal(c) if type(c) is float else c for c in fn.__code__.co_consts)
    return types.FunctionType(fn.__code__.replace(co_consts=consts), fn.__globals__ if ns is None else ns,
                              fn.__name__)


def bind(ops: dict, flags: dict, wrap: Callable = lambda f: f, const: Callable = lambda v: v,
         module: str = __name__, extra: dict | None = None, literal: Optional[Callable] = None) -> dict:
    """The definitions re-created for one backend and one configuration.

    ``ops`` binds the primitives, ``flags`` the static flags (as from :func:`static_flags`; ``const`` wraps
    each, e.g. ``tl.constexpr``), ``wrap`` compiles each function (``numba.njit``, ``triton.jit``, or
    nothing), ``literal`` (optional) types the float literals of the definitions (``np.float32`` for a numba
    build on float32 data, see :func:`typed_literals`). Returns the namespace the functions resolve their
    names in; backends build their drivers in it (``types.FunctionType(driver.__code__, ns)``) so that the
    drivers see the same flags and functions.
    """
    missing = [p for p in PRIMITIVES if p not in ops]
    if missing:
        raise ConfigError(f"bind: the backend does not define the primitives {missing}")
    ns = {"__name__": module, "__builtins__": builtins, **(extra or {}), **ops}
    ns.update({k: const(v) for k, v in flags.items()})
    for fn in DEFINITIONS:
        fn = typed_literals(fn, literal, ns) if literal is not None else types.FunctionType(fn.__code__, ns,
                                                                                             fn.__name__)
        ns[fn.__name__] = wrap(fn)
    return ns


def _t_tanh(z):
    return torch.tanh(z) if isinstance(z, torch.Tensor) else math.tanh(z)


def _t_sech2(z):
    return 1 / torch.cosh(z) ** 2


#: the primitives on torch tensors (scalars where the argument is a Python number)
TORCH_OPS = {
    "where": torch.where,
    "exp": torch.exp,
    "absv": torch.abs,
    "tanh": _t_tanh,
    "sech2": _t_sech2,
    "cbrt": lambda z: z ** (1.0 / 3.0),
    "minimum": lambda z, c: torch.clamp(z, max=c),
    "maximum": lambda z, c: torch.clamp(z, min=c),
}

_TORCH_CACHE: dict = {}


def torch_definitions(flags: dict) -> types.SimpleNamespace:
    """The definitions bound to torch operations for ``flags`` (memoised)."""
    key = tuple(sorted(flags.items()))
    if key not in _TORCH_CACHE:
        _TORCH_CACHE[key] = types.SimpleNamespace(**bind(TORCH_OPS, flags))
    return _TORCH_CACHE[key]


#: the flags that leave only the pointwise functions (surrogate, φ) meaningful
POINTWISE_FLAGS = {"CUBA": False, "ALIF": False, "FIRE": True, "RESET": 0, "DECAY_INPUT": False, "MPR": False,
                   "THR_RESET": True, "DETACH": False, "ADLIF": 0, "CARRY_I": False, "CARRY_A": False, "TRUNC": 0}
