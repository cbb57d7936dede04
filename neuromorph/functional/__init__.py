"""Pure tensor math, no state and no backends: the one definition of the neuron dynamics (step, adjoint,
surrogate derivatives; :mod:`~neuromorph.functional.dynamics`), the surrogate spike functions, the MPR and
the validation of neuron inputs. The backends that run the dynamics over a sequence are in
:mod:`neuromorph.kernels`, the layers in :mod:`neuromorph.nn`."""

from neuromorph.functional.dynamics import (RESET_MODES, DynamicsConfig, DynamicsParams, NeuronState, Surrogate,
                                            static_flags)
from neuromorph.functional.mpr import mpr, mpr_fire, mpr_grad
from neuromorph.functional.neuron import check_sequence, check_threshold, tau_to_decay
from neuromorph.functional.surrogate import DEFAULT_ALPHA, SURROGATE_IDS, get_surrogate, spike_fn

__all__ = ["RESET_MODES", "DynamicsConfig", "DynamicsParams", "NeuronState", "Surrogate", "static_flags", "mpr",
           "mpr_fire", "mpr_grad", "check_sequence", "check_threshold", "tau_to_decay", "DEFAULT_ALPHA",
           "SURROGATE_IDS", "get_surrogate", "spike_fn"]
