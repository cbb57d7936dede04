"""neuromorph.models"""
from neuromorph.models.transformer import MaskedSpikingTransformer  # noqa: F401
from neuromorph.models.nmnist import NMNISTConvSNN  # noqa: F401
from neuromorph.models.shd import SHDDelayNet  # noqa: F401
