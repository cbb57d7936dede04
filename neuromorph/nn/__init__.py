"""Layers users compose: spiking neurons, time-distributed stateless layers and the seed methods."""

from neuromorph.kernels.config import NeuronState  # noqa: F401
from neuromorph.nn.protocol import LayerDecl, Role, register_layer, unregister_layer  # noqa: F401
from neuromorph.nn.layers import (  # noqa: F401
    AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Conv3d, Dropout, Flatten, Linear,
    MaxPool1d, MaxPool2d, SequenceDropout, TimeDistributed, merge_time)
from neuromorph.nn.neurons import (  # noqa: F401
    ALIF, IF, LI, LIF, AdLIF, CubaLIF, EFAdLIF, NeuronSpec, SEAdLIF, SpikingNeuron, apply_constraints)
from neuromorph.nn.delays import DelayedLinear, SigmaSchedule, clamp_after_step, clamp_positions, round_delays, rounded_delays  # noqa: F401
from neuromorph.nn.mpbn import MPBN, MPBNLIF, fold_mpbn  # noqa: F401
from neuromorph.nn.hoyer import HoyerSpike, hoyer_extremum, hoyer_regularizer, hoyer_square  # noqa: F401
from neuromorph.nn.masking import SpikeMask  # noqa: F401
from neuromorph.nn.qcfs import QCFS, ConvertedSNN, QCFSNeuron, convert_to_snn  # noqa: F401
from neuromorph.nn.delta import DeltaActivation, delta_penalty  # noqa: F401
from neuromorph.nn.recurrent import Recurrent, RecurrentState  # noqa: F401
from neuromorph.nn.streaming import Streaming  # noqa: F401
from neuromorph.nn.layout import InputLayout, expect_input  # noqa: F401
from neuromorph.nn.maxformer import DWCMixer, Embed, EmbedMax, MaxEmbed, MaxFormerBlock, SpikingMLP, SpikingSelfAttention2d  # noqa: F401
