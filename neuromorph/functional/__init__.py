"""Pure tensor functions, no state: surrogate spike functions, the MPR, neuron dynamics over sequences."""

from neuromorph.functional.mpr import mpr, mpr_fire, mpr_grad
from neuromorph.functional.neuron import alif, check_sequence, cuba_lif, if_, li, lif, tau_to_decay
from neuromorph.functional.surrogate import DEFAULT_ALPHA, SURROGATE_IDS, Surrogate, get_surrogate, spike_fn

__all__ = ["mpr", "mpr_fire", "mpr_grad", "alif", "check_sequence", "cuba_lif", "if_", "li", "lif", "tau_to_decay",
           "DEFAULT_ALPHA", "SURROGATE_IDS", "Surrogate", "get_surrogate", "spike_fn"]
