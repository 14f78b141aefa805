"""The thin bridge to torch.optim (imports torch; ``import lrtempo`` alone does not)."""

from ._scheduler import LRTempoScheduler, ScheduleChangedError, ScheduleOrderWarning, lambda_lr

__all__ = ["LRTempoScheduler", "ScheduleChangedError", "ScheduleOrderWarning", "lambda_lr"]
