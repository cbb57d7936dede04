"""The compiled backends are built from the one definition in functional/dynamics.py; reference is not."""

import ast
import importlib
import inspect

import pytest

from neuromorph.functional import dynamics
from neuromorph.kernels import DynamicsConfig, fused, reference, triton_available

CONFIGS = [DynamicsConfig(), DynamicsConfig(cuba=True, reset="hard", decay_input=False), DynamicsConfig(alif=True),
           DynamicsConfig(fire=False, reset="none"), DynamicsConfig(mpr=True, reset_amount=1.0)]


def _code(fn):
    """The Python code object behind a numba dispatcher or Triton JIT function."""
    return getattr(fn, "py_func", getattr(fn, "fn", fn)).__code__


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_numba_loops_call_the_definitions(cfg):
    for adjoint, name in [(False, "step"), (True, "adjoint")]:
        ns = fused._compiled(cfg, adjoint).py_func.__globals__
        assert _code(ns[name]) is getattr(dynamics, name).__code__
        assert ns["CUBA"] == cfg.cuba and ns["FIRE"] == cfg.fire  # configuration frozen at compile time


@pytest.mark.skipif(not triton_available(), reason="Triton is not installed or cannot run here")
@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_triton_kernels_call_the_definitions(cfg):
    from neuromorph.kernels import triton as triton_backend

    for adjoint, name in [(False, "step"), (True, "adjoint")]:
        ns = triton_backend._compiled(cfg, adjoint).fn.__globals__
        assert _code(ns[name]) is getattr(dynamics, name).__code__


def test_surrogates_and_mpr_evaluate_the_same_definitions():
    mpr = importlib.import_module("neuromorph.functional.mpr")  # the module (the package exports the function)
    surrogate = importlib.import_module("neuromorph.functional.surrogate")
    assert _code(mpr._DEFS.phi) is dynamics.phi.__code__
    assert "surrogate_grad" in inspect.getsource(surrogate.Surrogate.grad)


def test_reference_stays_independent_of_the_definition():
    """reference is the ground truth the backends are tested against: it must not run the shared step."""
    tree = ast.parse(inspect.getsource(reference))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "neuromorph.functional.dynamics" not in imported and "neuromorph.kernels.fused" not in imported
    assert "step" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def test_numba_time_walks_share_one_element_code():
    """The fused and the recurrent kernels' loops read and store the state and parameter slots and sum the
    parameter gradients only through the spliced element helpers: a new slot is added in one place."""
    from neuromorph.kernels import recurrent

    slots = {"iT", "aT", "syn", "rho", "adapt", "couple", "di", "da", "gbeta", "gthr", "gsyn", "grho", "gadapt",
             "gcouple", "i0", "v0"}
    for loop in (fused._forward_loop, fused._backward_loop, recurrent._forward_loop, recurrent._backward_loop):
        tree = ast.parse(inspect.getsource(loop))
        indexed = {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name)}
        assert not indexed & slots, (loop.__module__, loop.__name__, indexed & slots)
        called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert called & {"step_element", "adjoint_element"}, loop.__name__
    cfg = DynamicsConfig(adlif="ef")
    for kernel in (fused._compiled(cfg, True), recurrent._compiled(cfg, True)):
        names = kernel.py_func.__code__.co_names  # spliced: the definition is called, no helper is left
        assert "adjoint" in names and "adjoint_element" not in names


def _collides(xv, t, m, beta, thr, syn, rho, adapt, couple, save_i, iseq, aseq, vT, iT, aT, v_rest, v_reset,
              ramount, k, one, zero):
    kappa = one  # the helper assigns a local of this name
    o, h, v = step_element(xv, t, m, beta, thr, syn, rho, adapt, couple, save_i, iseq, aseq, vT, iT, aT,  # noqa: F821
                           v_rest, v_reset, ramount, k, one, zero)
    return o + kappa


def _not_names(xv, t, m, beta, thr, syn, rho, adapt, couple, save_i, iseq, aseq, vT, iT, aT, v_rest, v_reset,
               ramount, k, one, zero):
    o, h, v = step_element(xv + 1, t, m, beta, thr, syn, rho, adapt, couple, save_i, iseq, aseq, vT, iT, aT,  # noqa: F821
                           v_rest, v_reset, ramount, k, one, zero)
    return o


def test_splice_refuses_what_would_change_the_loop():
    ns = dynamics.bind(fused._NUMBA_OPS, dynamics.static_flags(DynamicsConfig()))
    with pytest.raises(TypeError, match="'kappa' is a name of the loop"):
        fused.splice(_collides, dict(ns))
    with pytest.raises(TypeError, match="one name per parameter"):
        fused.splice(_not_names, dict(ns))
