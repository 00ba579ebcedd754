"""Inputs, targets, losses and rewards: trial tasks for the training loop, and experiments."""

from .base import Batch, ContinuousTask, Task, poisson_raster
from .distal_reward import DistalReward, DistalRewardSpec
from .oua_regression import OuaRegression, OuaRegressionSpec
from .recurrent import DelayedNonMatch, DnmsSpec, PatternGeneration, PatternGenerationSpec
from .spike_count import SpikeCount, SpikeCountSpec
from .spike_pattern import SpikePattern, SpikePatternSpec, StdpPairing, StdpPairingSpec
from .teacher import TeacherRegression, TeacherRegressionSpec
from .temporal import TemporalRegression, TemporalRegressionSpec

TASKS = {task.kind: task for task in (TeacherRegression, SpikeCount, DistalReward, SpikePattern, StdpPairing,
                                      DelayedNonMatch, PatternGeneration, OuaRegression, TemporalRegression)}

__all__ = ["OuaRegression", "OuaRegressionSpec", "DelayedNonMatch", "DnmsSpec", "PatternGeneration", "PatternGenerationSpec", "SpikePattern", "SpikePatternSpec", "StdpPairing", "StdpPairingSpec", "TASKS", "Batch", "ContinuousTask", "Task", "DistalReward", "DistalRewardSpec", "poisson_raster", "TeacherRegression", "TeacherRegressionSpec", "TemporalRegression", "TemporalRegressionSpec", "SpikeCount",
           "SpikeCountSpec"]
