"""lrtempo: exact, reproducible learning-rate schedules for PyTorch training.

>>> import lrtempo
>>> s = lrtempo.build_schedule({"type": "warmup_cosine", "peak_lr": 1e-3, "total_steps": 100, "warmup": 0.1})
>>> s(0), s(10), s(100)
(0.0, 0.001, 0.0)
"""

from .config import ConfigError, build_schedule, load_schedule, schedule_to_spec, spec_hash
from .rundir import RunDir
from .schedules import *  # noqa: F403
from .schedules import __all__ as _schedule_names

__version__ = "0.1.0"

__all__ = [*_schedule_names, "ConfigError", "RunDir", "build_schedule", "load_schedule", "schedule_to_spec",
           "spec_hash", "__version__"]
