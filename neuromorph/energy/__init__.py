"""neuromorph.energy: spike and synaptic-operation counting, hardware cost models, energy reports.

``measure(model, inputs, hardware="loihi,cmos45nm")`` runs a model under forward hooks and returns an
:class:`EnergyReport` (per-layer spikes, firing rate, synops, MACs, neuron updates, energy; totals per
inference; active and inactive neuron updates; the SNN/ANN energy ratio; NeuroBench's
``SynapticOperations`` and ``ActivationSparsity`` via ``report.neurobench()``). Conventions:
:mod:`neuromorph.energy.counters`; hardware profiles: :mod:`neuromorph.hardware_profile`.
"""

from typing import TYPE_CHECKING

from neuromorph._lazy import lazy_exports

if TYPE_CHECKING:  # the public names; each loads its submodule on first use (neuromorph._lazy)
    from neuromorph.energy.counters import LayerCounts, conv_fanout, is_binary, linear_fanout, pool_fanout
    from neuromorph.energy.measure import measure, parse_hardware
    from neuromorph.energy.monitor import EnergyMonitor
    from neuromorph.hardware_profile import OPERATIONS, EnergyConstant, HardwareProfile, list_profiles, load_profile
    from neuromorph.energy.report import EnergyReport, layer_energy_pj

__getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
