"""Optimizers, learning-rate schedules, gradient clipping and ℓ1/ℓ2 kernel penalties."""

from trainwell.optim.clipping import clip_gradients
from trainwell.optim.lazy_dynamo import defer_dynamo_import
from trainwell.optim.optimizers import HYPERPARAMETERS, OPTIMIZERS, OptimInfo, make_optimizer
from trainwell.optim.penalties import kernel_parameters, kernel_penalty
from trainwell.optim.schedule_plot import plot_schedule, schedule_curve
from trainwell.optim.schedules import (
    SCHEDULES,
    ConstantSchedule,
    ExponentialSchedule,
    OneCycleSchedule,
    PerformanceSchedule,
    PiecewiseSchedule,
    PowerSchedule,
    Schedule,
    apply_schedule,
    make_schedule,
)

__all__ = [
    "OPTIMIZERS", "OptimInfo", "HYPERPARAMETERS", "make_optimizer",
    "SCHEDULES", "Schedule", "ConstantSchedule", "PowerSchedule", "ExponentialSchedule",
    "PiecewiseSchedule", "PerformanceSchedule", "OneCycleSchedule", "make_schedule",
    "schedule_curve", "plot_schedule", "apply_schedule",
    "clip_gradients", "kernel_penalty", "kernel_parameters",
]

# building a torch optimizer would import torch's compiler (about a second) in eager runs
defer_dynamo_import()
