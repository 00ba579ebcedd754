"""Inputs, targets and losses."""

from .teacher import TeacherRegression, TeacherRegressionSpec

TASKS = {TeacherRegression.kind: TeacherRegression}

__all__ = ["TASKS", "TeacherRegression", "TeacherRegressionSpec"]
