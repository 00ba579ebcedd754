"""Inputs, targets, losses and rewards: trial tasks for the training loop, and experiments."""

from .base import Batch, Task, poisson_raster
from .spike_count import SpikeCount, SpikeCountSpec
from .teacher import TeacherRegression, TeacherRegressionSpec

TASKS = {task.kind: task for task in (TeacherRegression, SpikeCount)}

__all__ = ["TASKS", "Batch", "Task", "poisson_raster", "TeacherRegression", "TeacherRegressionSpec", "SpikeCount",
           "SpikeCountSpec"]
