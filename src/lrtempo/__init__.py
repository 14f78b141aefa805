"""lrtempo: exact, reproducible learning-rate schedules for PyTorch training."""

from .schedules import *  # noqa: F403
from .schedules import __all__ as _schedule_names

__version__ = "0.1.0"

__all__ = [*_schedule_names, "__version__"]
