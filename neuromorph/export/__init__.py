"""neuromorph.export: module graph -> NIR graph (and back); NIR graph -> Lava netx HDF5 in Loihi fixed
point; a bit-accurate simulator of the exported network; hardware constraint checks.

``to_nir(model, sample)`` / ``from_nir(graph)`` (:mod:`.nir`), ``to_lava(model, path, sample)``
(:mod:`.lava`), ``simulate(path, events)`` and ``fidelity_report`` (:mod:`.loihi`), ``check_model`` /
``check_network`` (:mod:`.constraints`); ``export_checkpoint`` (:mod:`.pipeline`: the one export path of
``neuromorph export`` and of the export after ``neuromorph train``). Formats and equations are in each
module's docstring.
"""

from typing import TYPE_CHECKING

from neuromorph._lazy import lazy_exports

if TYPE_CHECKING:  # the public names; each loads its submodule on first use (neuromorph._lazy)
    from neuromorph.export.constraints import CheckReport, check_model, check_network, load_profile, mapping_costs
    from neuromorph.export.lava import graph_to_layers, to_lava
    from neuromorph.export.loihi import (
        FidelityReport,
        FloatLayer,
        SimulationResult,
        disable_quantization_aware,
        enable_quantization_aware,
        fake_quant_tau,
        fake_quant_weight,
        fidelity_report,
        quantize_layer,
        simulate,
    )
    from neuromorph.export.netx import NetxLayer, NetxNetwork, read_netx, write_netx
    from neuromorph.export.nir import NIRGraphModule, NIRNeuron, from_nir, to_nir, write_nir
    from neuromorph.export.pipeline import ExportResult, export_checkpoint

__getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
