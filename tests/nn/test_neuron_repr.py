"""A neuron's repr shows its parameters; the top-level namespace lists only the package's own names."""

from __future__ import annotations

import pytest
import torch

import neuromorph
import neuromorph.nn as nnm

NEURONS = [nnm.IF, nnm.LIF, nnm.ALIF, nnm.CubaLIF, nnm.LI]


def test_lif_repr_shows_tau_and_threshold():
    assert repr(nnm.LIF(tau=5.0, threshold=0.3)) == (
        "LIF(tau=5, threshold=0.3, decay_input=True, reset='soft', surrogate=atan(2))")


@pytest.mark.parametrize("cls", NEURONS, ids=lambda c: c.__name__)
def test_every_parameter_appears_scalar_by_value_per_neuron_by_shape(cls):
    scalar = repr(cls())
    own = [n for n, _ in (*cls().named_parameters(recurse=False), *cls().named_buffers(recurse=False))]
    assert own and all(f"{n}=" in scalar for n in own), (own, scalar)
    if cls is nnm.IF:  # no time constant: the threshold is the one parameter
        assert "threshold=per-neuron(3, 2) (learned)" in repr(cls(shape=(3, 2), learn_threshold=True))
        return
    text = repr(cls(shape=(3, 2), learn_tau=True))
    tau = "tau_mem" if cls is nnm.CubaLIF else "tau"
    assert f"{tau}=per-neuron(3, 2) (learned)" in text, text
    if cls is not nnm.LI:
        assert "threshold=per-neuron(3, 2)," in text, text


def test_repr_shows_non_default_reset_details():
    text = repr(nnm.CubaLIF(tau_mem=4.0, v_reset=-0.5, dt=1e-3, backend="reference"))
    assert "tau_mem=4" in text and "v_reset=-0.5" in text and "dt=0.001" in text and "backend='reference'" in text


def test_top_level_namespace_is_clean():
    names = dir(neuromorph)
    assert names == sorted(neuromorph.__all__)
    assert not {"importlib", "annotations", "_SUBMODULES"} & set(names)
    assert {"nn", "data", "train", "errors", "__version__"} <= set(names)
    for name in names:
        assert getattr(neuromorph, name) is not None
    with pytest.raises(AttributeError, match="importlib"):
        neuromorph.importlib  # noqa: B018
    assert isinstance(neuromorph.nn.LIF()(torch.zeros(2, 1, 3)), torch.Tensor)
