"""Inputs, targets, losses and rewards: trial tasks for the training loop, and experiments.

Add a task by subclassing :class:`Task` (or :class:`ContinuousTask`) and registering it with
:func:`register_task`; a protocol then names it as ``task.kind``.
"""

from ..registry import Registry
from .base import Batch, ContinuousTask, Task, poisson_raster
from .distal_reward import DistalReward, DistalRewardSpec
from .oua_regression import OuaRegression, OuaRegressionSpec
from .recurrent import DelayedNonMatch, DnmsSpec, PatternGeneration, PatternGenerationSpec
from .spike_count import SpikeCount, SpikeCountSpec
from .spike_pattern import SpikePattern, SpikePatternSpec, StdpPairing, StdpPairingSpec
from .teacher import TeacherRegression, TeacherRegressionSpec
from .temporal import TemporalRegression, TemporalRegressionSpec

TASKS = Registry("task")  # task.kind -> Task subclass
MODES = ("trials", "continuous")


def register_task(task_class=None, *, override=False):
    """Class decorator: make a :class:`Task` subclass available to protocols as ``task.kind``.

    A kind that is registered already is refused unless ``override=True``.
    """
    def register(cls):
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"register_task: needs a subclass of bioplastic.tasks.Task (got {cls!r})")
        if not isinstance(cls.kind, str) or not cls.kind:
            raise ValueError(f"{cls.__name__}.kind: must name the task (got {cls.kind!r})")
        if cls.spec_class is None:
            raise ValueError(f"{cls.__name__}.spec_class: must be the task's spec (a frozen dataclass of params)")
        if cls.mode not in MODES:
            raise ValueError(f"{cls.__name__}.mode: must be one of {', '.join(MODES)} (got {cls.mode!r})")
        return TASKS.register(cls.kind, cls, override=override)

    return register(task_class) if task_class is not None else register


for _task in (TeacherRegression, SpikeCount, DistalReward, SpikePattern, StdpPairing, DelayedNonMatch,
              PatternGeneration, OuaRegression, TemporalRegression):
    register_task(_task)

__all__ = ["register_task", "OuaRegression", "OuaRegressionSpec", "DelayedNonMatch", "DnmsSpec", "PatternGeneration", "PatternGenerationSpec", "SpikePattern", "SpikePatternSpec", "StdpPairing", "StdpPairingSpec", "TASKS", "Batch", "ContinuousTask", "Task", "DistalReward", "DistalRewardSpec", "poisson_raster", "TeacherRegression", "TeacherRegressionSpec", "TemporalRegression", "TemporalRegressionSpec", "SpikeCount",
           "SpikeCountSpec"]
