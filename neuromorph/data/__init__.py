"""neuromorph.data: event containers, readers for event files, data sets and transforms."""

from typing import TYPE_CHECKING

from neuromorph._lazy import lazy_exports

if TYPE_CHECKING:  # the public names; each loads its submodule on first use (neuromorph._lazy)
    from neuromorph.data.events import AUDIO_EVENT_DTYPE, EVENT_DTYPE, EventArray, make_events, require_fields
    from neuromorph.data.readers import (
        FORMATS, detect_format, iter_aedat31, iter_aedat4, iter_atis_bin, iter_dat, iter_es, iter_evt2, iter_evt3, iter_shd,
        read, read_aedat2, read_aedat31, read_aedat4, read_aedat_addresses, read_atis_bin, read_dat, read_dvs128_bin,
        read_es, read_evt2, read_evt3, read_nmnist, read_shd, read_shd_sample, read_ssc, shd_info, summarize,
    )
    from neuromorph.data.collate import collate_time_major, pad_time_major
    from neuromorph.data.digits_dvs import DigitsDVS
    from neuromorph.data.emulator import DVSEmulator, emulate, emulate_video, read_video
    from neuromorph.data.transforms import (
        Compose, ToFrame, ToSpikeCounts, Denoise, RefractoryPeriod, Downsample, CenterCrop, Crop, RandomFlipLR,
        RandomFlipUD, RandomFlipPolarity, RandomRotation, TimeJitter, DropEvent, TimeSkew, cache_key,
    )
    from neuromorph.data.datasets import NMNIST, SHD, SSC, DVSGesture

__getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)
