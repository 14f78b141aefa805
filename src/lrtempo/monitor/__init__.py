"""Training-health signals and the run's events, computed on the device in batched operations."""

from ._detectors import (
    ALIGNED,
    INSUFFICIENT,
    NORMAL,
    STALE,
    TRAP,
    Event,
    RestartTracker,
    SpikeDetector,
    StalenessTracker,
    TrapDetector,
)
from ._monitor import MONITOR_COLUMNS, Monitor, MonitorSettings
from ._phases import PHASES, phase_labels, phase_labels_from_rates
from ._rolling import RollingMedian, RollingSlope

__all__ = [
    "ALIGNED", "INSUFFICIENT", "MONITOR_COLUMNS", "NORMAL", "PHASES", "STALE", "TRAP",
    "Event", "Monitor", "MonitorSettings", "RestartTracker", "RollingMedian", "RollingSlope",
    "SpikeDetector", "StalenessTracker", "TrapDetector", "phase_labels", "phase_labels_from_rates",
]
