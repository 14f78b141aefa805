"""Training with a schedule: the training step, run log, checkpoints and resume, built-in tasks."""

from ._checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ._log import LOG_SCHEMA_VERSION, SCHEMA_COLUMNS, RunLog, read_log
from ._run import EXTRA_COLUMNS, RunSummary, train
from ._runconfig import DEFAULT_RUN, RunConfig, load_run_config, parse_run_config
from ._state import TrainingDiverged, TrainState, UpdateResult, build_optimizer
from .tasks import TASKS

__all__ = [
    "DEFAULT_RUN", "EXTRA_COLUMNS", "LOG_SCHEMA_VERSION", "SCHEMA_COLUMNS", "TASKS",
    "RunConfig", "RunLog", "RunSummary", "TrainState", "TrainingDiverged", "UpdateResult",
    "build_optimizer", "latest_checkpoint", "load_checkpoint", "load_run_config", "parse_run_config",
    "read_log", "save_checkpoint", "train",
]
