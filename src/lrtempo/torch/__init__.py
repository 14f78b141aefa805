"""The thin bridge to torch.optim (imports torch; ``import lrtempo`` alone does not)."""

from ._hyper import WEIGHT_DECAY_MULTIPLIER, HyperSchedules
from ._scheduler import LRTempoScheduler, ParamGroupWarning, ScheduleChangedError, ScheduleOrderWarning, lambda_lr

__all__ = ["HyperSchedules", "WEIGHT_DECAY_MULTIPLIER", "LRTempoScheduler", "ParamGroupWarning", "ScheduleChangedError",
           "ScheduleOrderWarning", "lambda_lr"]
