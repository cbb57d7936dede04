"""neuromorph.data: event containers, readers for event files, data sets and transforms."""

from neuromorph.data.events import AUDIO_EVENT_DTYPE, EVENT_DTYPE, make_events, require_fields
from neuromorph.data.readers import iter_atis_bin, read_atis_bin, read_dvs128_bin, read_nmnist
