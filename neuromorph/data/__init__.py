"""neuromorph.data: event containers, readers for event files, data sets and transforms."""

from neuromorph.data.events import AUDIO_EVENT_DTYPE, EVENT_DTYPE, make_events, require_fields
from neuromorph.data.readers import iter_atis_bin, read_atis_bin, read_dvs128_bin, read_nmnist
from neuromorph.data.collate import collate_time_major, pad_time_major
from neuromorph.data.digits_dvs import DigitsDVS
from neuromorph.data.emulator import DVSEmulator, emulate
from neuromorph.data.transforms import (
    Compose, ToFrame, ToSpikeCounts, Denoise, RefractoryPeriod, Downsample, CenterCrop, Crop, RandomFlipLR,
    RandomFlipUD, RandomFlipPolarity, RandomRotation, TimeJitter, DropEvent, TimeSkew, cache_key,
)
from neuromorph.data.datasets import NMNIST, SHD, SSC, DVSGesture
