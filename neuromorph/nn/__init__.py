"""neuromorph.nn"""
from neuromorph.nn.delays import DelayedLinear, SigmaSchedule, clamp_after_step, clamp_positions, round_delays, rounded_delays  # noqa: F401
