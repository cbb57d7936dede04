"""The compiled backends are built from the one definition in functional/dynamics.py; reference is not."""

import ast
import importlib
import inspect

import numpy as np
import pytest

from neuromorph.functional import dynamics
from neuromorph.kernels import DynamicsConfig, fused, reference, triton_available

CONFIGS = [DynamicsConfig(), DynamicsConfig(cuba=True, reset="hard", decay_input=False), DynamicsConfig(alif=True),
           DynamicsConfig(fire=False, reset="none"), DynamicsConfig(mpr=True, reset_amount=1.0)]


def _code(fn):
    """The Python code object behind a numba dispatcher or Triton JIT function."""
    return getattr(fn, "py_func", getattr(fn, "fn", fn)).__code__


def _same_code(compiled, definition) -> bool:
    """The definition's code, with at most its float literals typed (numba builds on float32 data)."""
    a, b = compiled.__code__, definition.__code__
    lits = [(x, y) for x, y in zip(a.co_consts, b.co_consts) if type(y) is float]
    return (a.co_code == b.co_code and a.co_names == b.co_names and len(a.co_consts) == len(b.co_consts)
            and all(float(x) == pytest.approx(y, rel=1e-7) for x, y in lits))


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_loops_call_the_definitions(cfg, dtype):
    for adjoint, name in [(False, "step"), (True, "adjoint")]:
        ns = fused._compiled(cfg, adjoint, dtype=dtype).py_func.__globals__
        fn = getattr(ns[name], "py_func", ns[name])
        assert _same_code(fn, getattr(dynamics, name))
        # the float literals have the data's type: no float64 arithmetic on float32 data
        assert {type(c) for c in fn.__code__.co_consts if isinstance(c, (float, np.floating))} <= {np.dtype(dtype).type}
        assert ns["CUBA"] == cfg.cuba and ns["FIRE"] == cfg.fire  # configuration frozen at compile time


def test_numba_loops_are_compiled_per_switch_and_refuse_unknown_ones():
    cfg = DynamicsConfig()
    a = fused._compiled(cfg, True, need_beta=True)
    b = fused._compiled(cfg, True, need_beta=False)
    assert a is not b and a.py_func.__globals__["NEED_BETA"] and not b.py_func.__globals__["NEED_BETA"]
    # a switch the configuration cannot use adds no variant
    assert fused._compiled(cfg, True, need_alpha=True) is fused._compiled(cfg, True, need_alpha=False)
    with pytest.raises(TypeError, match="unknown switches"):
        fused._compiled(cfg, False, need_beta=True)


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


def _collides(xv, t, m, beta, thr, syn, rho, adapt, couple, save_i, save_a, iseq, aseq, vT, iT, aT, v_rest,
              v_reset, ramount, k, one, zero):
    kappa = one  # the helper assigns a local of this name
    o, h, v = step_element(xv, t, m, beta, thr, syn, rho, adapt, couple, save_i, save_a, iseq, aseq, vT, iT, aT,  # noqa: F821
                           v_rest, v_reset, ramount, k, one, zero)
    return o + kappa


def _not_names(xv, t, m, beta, thr, syn, rho, adapt, couple, save_i, save_a, iseq, aseq, vT, iT, aT, v_rest,
               v_reset, ramount, k, one, zero):
    o, h, v = step_element(xv + 1, t, m, beta, thr, syn, rho, adapt, couple, save_i, save_a, iseq, aseq, vT, iT, aT,  # noqa: F821
                           v_rest, v_reset, ramount, k, one, zero)
    return o


def test_splice_refuses_what_would_change_the_loop():
    ns = dynamics.bind(fused.numba_ops(np.float32), dynamics.static_flags(DynamicsConfig()))
    with pytest.raises(TypeError, match="'kappa' is a name of the loop"):
        fused.splice(_collides, dict(ns))
    with pytest.raises(TypeError, match="one name per parameter"):
        fused.splice(_not_names, dict(ns))


@pytest.mark.parametrize("cfg", [DynamicsConfig(), DynamicsConfig(cuba=True, reset="hard"), DynamicsConfig(alif=True),
                                 DynamicsConfig(cuba=True, alif=True), DynamicsConfig(adlif="se"),
                                 DynamicsConfig(adlif="ef")],
                         ids=["lif", "cuba", "alif", "cuba-alif", "se-adlif", "ef-adlif"])
def test_numba_loops_on_float32_have_no_float64_arithmetic_and_vectorise(cfg):
    """A float64 literal in the element code made the whole adjoint double precision (converting every
    load), which kept the loop scalar: several times slower, and rounded unlike torch's float32 ops.
    (CUBA + ALIF and EF-adLIF with all their gradients touch more arrays than LLVM's default limit on
    run-time overlap checks allows; kernels.fused raises that limit.)"""
    import numba
    import torch

    from neuromorph.kernels import run
    from neuromorph.kernels.config import DynamicsParams

    P = DynamicsParams(*(torch.tensor(v, requires_grad=True) for v in (0.9, 1.0, 0.8, 0.9, 0.1, 0.2)))
    x = torch.randn(6, 2, 16, requires_grad=True)
    out, _, _ = run(x, P, cfg, None, False, "fused")
    out.sum().backward()  # compiles the float32 forward and backward loops of cfg
    checked = 0
    for key, kernel in list(fused._COMPILED.items()):
        flags = dict(key[3])
        if key[1] or key[2] != "float32" or any(flags[k] != v for k, v in dynamics.static_flags(cfg, key[0]).items()):
            continue
        for sig in kernel.signatures:
            fresh = numba.njit(error_model="numpy")(kernel.py_func)  # uncached, so that its IR can be read
            fresh.compile(sig)
            ir = fresh.inspect_llvm(sig)
            assert not any(f"{op} double" in ir for op in ("fadd", "fsub", "fmul", "fdiv")), key
            assert "x float>" in ir, key  # vector arithmetic on float32 lanes
            checked += 1
    assert checked >= 2  # the forward and the backward


def test_splice_uses_the_source_read_at_import(monkeypatch):
    """A configuration compiled after its source file changed (a developer editing fused.py while tests run)
    failed with KeyError '_forward_loop': the splice re-read the file. The sources are now kept at import."""
    import inspect

    import torch

    from neuromorph.kernels import recurrent, run
    from neuromorph.kernels.config import DynamicsParams

    def edited(*args, **kwargs):
        raise OSError("the file changed since import")

    monkeypatch.setattr(inspect, "getsource", edited)
    cfg = DynamicsConfig(cuba=True, alif=True, reset="none")
    flags = dynamics.static_flags(cfg)
    for key in [k for k in fused._COMPILED if all(dict(k[3]).get(f) == v for f, v in flags.items())]:
        monkeypatch.delitem(fused._COMPILED, key)  # compiled (spliced) again below
    P = DynamicsParams(*(torch.tensor(v) for v in (0.9, 1.0, 0.8, 0.9, 0.1, 0.2)))
    x = torch.randn(4, 2, 3)
    out, _, _ = run(x, P, cfg, None, False, "fused")
    ref, _, _ = run(x, P, cfg, None, False, "reference")
    torch.testing.assert_close(out, ref)
    assert all(f in fused._SOURCES for f in (recurrent._forward_loop, recurrent._backward_loop))
