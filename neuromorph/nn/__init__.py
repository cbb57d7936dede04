"""neuromorph.nn"""
from neuromorph.nn.delays import DelayedLinear, SigmaSchedule, clamp_after_step, clamp_positions, round_delays, rounded_delays  # noqa: F401
from neuromorph.nn.mpbn import MPBN, MPBNLIF, fold_mpbn  # noqa: F401
from neuromorph.nn.hoyer import HoyerSpike, hoyer_extremum, hoyer_regularizer, hoyer_square  # noqa: F401
from neuromorph.nn.masking import SpikeMask  # noqa: F401
from neuromorph.nn.qcfs import QCFS, ConvertedSNN, QCFSNeuron, convert_to_snn  # noqa: F401
from neuromorph.nn.delta import DeltaActivation, delta_penalty  # noqa: F401
