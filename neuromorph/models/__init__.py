"""neuromorph.models"""
from neuromorph.models.transformer import MaskedSpikingTransformer  # noqa: F401
