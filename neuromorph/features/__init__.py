"""neuromorph.features: event-driven feature extractors that learn without gradients (FEAST, HD-SNN)."""

from neuromorph.features.feast import FEATURE_EVENT_DTYPE, FeastLayer, FeastNetwork, FeastTrace, feature_histogram
from neuromorph.features.readout import LinearReadout
from neuromorph.features.hdsnn import HDSNN, bin_events, evidence_from_events, motion_clips
